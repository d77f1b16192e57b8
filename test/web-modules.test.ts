// The web client has no build step, so nothing checks its modules' wiring before a browser runs them: an import
// of a name a module no longer exports, a call of a method that is gone, a name never defined. TypeScript reads
// the plain JS here (checkJs, with the SDK's own types for /parley-client.js) and must find none of those. What
// it would say about DOM element types (an Element that is really an <img>) is not counted: those are not wiring.
import { writeFile } from 'node:fs/promises'
import path from 'node:path'
import t from 'tap'
import ts from 'typescript'
import { tempDir } from './helper.ts'

const root = path.resolve(import.meta.dirname, '..')
const DOM_TYPE = /on type '(Element|HTML\w*Element|EventTarget|Node)'/

t.test("the web client's modules import only what exists and call only what is there", async (t) => {
  const dir = await tempDir(t)
  // rootDirs merges this directory with web/, so `./parley-client.js` resolves to the declaration written here.
  await writeFile(path.join(dir, 'parley-client.d.ts'), `export * from ${JSON.stringify(path.join(root, 'client/src/index.ts'))}\n`)
  // sw.js is the service worker: another global scope (no window, no imports), and no part of this wiring.
  const files = ts.sys.readDirectory(path.join(root, 'web'), ['.js']).filter((f) => !f.endsWith('/sw.js'))
  const program = ts.createProgram([...files, path.join(dir, 'parley-client.d.ts')], {
    allowJs: true, checkJs: true, noEmit: true, strict: false, skipLibCheck: true, allowImportingTsExtensions: true,
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, moduleResolution: ts.ModuleResolutionKind.Bundler,
    lib: ['lib.es2022.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'], types: [], rootDirs: [path.join(root, 'web'), dir],
  })
  const problems = ts.getPreEmitDiagnostics(program)
    .map((d) => ({ file: d.file ? path.relative(root, d.file.fileName) : '', message: ts.flattenDiagnosticMessageText(d.messageText, ' ') }))
    .filter((d) => d.file.startsWith('web/') && !DOM_TYPE.test(d.message))
    .map((d) => `${d.file}: ${d.message}`)
  t.ok(files.length > 20, `${files.length} modules read`)
  t.same(problems, [], 'no module refers to something that is not there')
})
