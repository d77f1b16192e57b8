// @parley/client as a package: its REST types are the ones openapi.yaml generates today, and it bundles into one
// plain ES module a browser page can load with no import map or CDN (`npm run build -w client`).
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { build } from 'esbuild'
import t from 'tap'
import { tempDir } from './helper.ts'

const root = path.resolve(import.meta.dirname, '..')
const committed = path.join(root, 'client/src/generated/openapi.ts')

t.test('the committed REST types are what openapi.yaml generates (else: npm run sdk:types)', async (t) => {
  const out = path.join(await tempDir(t), 'openapi.ts')
  const cli = path.join(root, 'node_modules/openapi-typescript/bin/cli.js')
  await promisify(execFile)(process.execPath, [cli, 'openapi.yaml', '-o', out], { cwd: root })
  t.ok((await readFile(committed, 'utf8')) === (await readFile(out, 'utf8')), 'client/src/generated/openapi.ts is current: run `npm run sdk:types`')
})

t.test('the SDK bundles into one self-contained ES module', async (t) => {
  const result = await build({ entryPoints: [path.join(root, 'client/src/index.ts')], bundle: true, format: 'esm', platform: 'neutral', target: 'es2022', write: false, logLevel: 'silent' })
  const code = result.outputFiles[0].text
  t.notMatch(code, /^\s*import\s/m, 'no import left for the browser to resolve')
  t.notMatch(code, /\bnode:|require\(/, 'nothing of Node')
  const mod = await import(`data:text/javascript;base64,${Buffer.from(code).toString('base64')}`)
  t.type(mod.ParleyClient, 'function', 'exports ParleyClient')
  if (typeof globalThis.WebSocket === 'undefined') {
    t.throws(() => new mod.ParleyClient({ baseUrl: 'http://127.0.0.1:1' }), /no WebSocket/, 'and asks for a WebSocket where the platform has none (Node 20)')
  } else {
    t.doesNotThrow(() => new mod.ParleyClient({ baseUrl: 'http://127.0.0.1:1' }), "and takes the platform's own WebSocket where there is one (Node 22+, browsers)")
  }
})
