import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { errorsMarkdown } from '../scripts/errors-doc.ts'
import { ERROR_CODES } from '../src/error-codes.ts'

// The list of error codes (src/error-codes.ts) is what the OpenAPI document and docs/ERRORS.md say: every code
// the source gives must be in it, and nothing it lists may be gone from the source.

const SRC = new URL('../src/', import.meta.url)

async function sources(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true })
  const nested = await Promise.all(entries.map((e) => (e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [])))
  return nested.flat()
}

t.test('every error code the source gives is listed, and every listed one is given', async (t) => {
  const files = (await sources(SRC.pathname)).filter((f) => !f.endsWith('error-codes.ts'))
  const text = (await Promise.all(files.map((f) => readFile(f, 'utf8')))).join('\n')
  const given = new Set<string>()
  // Where a code is written: an AppError and its helpers, an error frame or answer ({ code: 'X' }), the framework's table.
  for (const pattern of [/new AppError\(\d{3}, '([A-Z_]+)'/g, /(?:forbidden|badRequest|conflict|unauthorized)\([^;]*?'([A-Z_]+)'(?:, \[[^\]]*\])?\)/g, /code: '([A-Z_]+)'/g, /\[\d{3}, '([A-Z_]+)', /g]) {
    for (const [, code] of text.matchAll(pattern)) given.add(code)
  }
  for (const [, what] of text.matchAll(/notFound\('([a-z]+)'\)/g)) given.add(`${what.toUpperCase()}_NOT_FOUND`)
  t.ok(given.size > 40, `${given.size} codes found in src/`)
  t.same([...given].filter((c) => !(c in ERROR_CODES)), [], 'no code is missing from src/error-codes.ts')
  // ROUTE_NOT_FOUND, UNAUTHORIZED and the like are written once; a listed code must appear somewhere.
  const stale = Object.keys(ERROR_CODES).filter((c) => !given.has(c) && !text.includes(`'${c}'`))
  t.same(stale, [], 'no listed code is gone from src/')
})

t.test('docs/ERRORS.md is the list, up to date', async (t) => {
  const committed = await readFile(new URL('../docs/ERRORS.md', import.meta.url), 'utf8')
  t.ok(committed === errorsMarkdown(), 'docs/ERRORS.md is stale: run `npm run openapi` and commit it')
  for (const code of Object.keys(ERROR_CODES)) t.match(committed, `| \`${code}\` |`, `${code} has its row`)
})
