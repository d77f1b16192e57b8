// docs/API.md is the contract clients rely on, and it says openapi.yaml must agree with it: every route it lists
// is in the generated document, with the same method and path.
import { readFile } from 'node:fs/promises'
import t from 'tap'
import { parse } from 'yaml'

const root = new URL('../', import.meta.url)
const contract = await readFile(new URL('docs/API.md', root), 'utf8')
const spec = parse(await readFile(new URL('openapi.yaml', root), 'utf8')) as { paths: Record<string, Record<string, unknown>> }

// Not in the OpenAPI document by design (the document itself and its UI), or of an issue not built yet.
const NOT_IN_SPEC: Record<string, string> = {
  'GET /docs': 'Swagger UI',
  'GET /openapi.json': 'the document itself',
}
const NOT_BUILT_YET = /^(GET|POST|DELETE) \/(webhooks|push)\b/ // issue 17
// Routes this service adds to the contract (adding is allowed; renaming is not), and where each is described.
const ADDED: Record<string, string> = {
  'GET /files/{id}/url': 'a signed URL for <img src> and downloads (README, "Files")',
}

/** Every "METHOD /path" in the first cell of a table row, several per cell when separated by ·. */
function routesOf(markdown: string): string[] {
  const routes = new Set<string>()
  for (const line of markdown.split('\n')) {
    if (!/^\| [A-Z]+ \//.test(line)) continue
    const cell = line.split(/(?<!\\)\|/)[1]
    for (const m of cell.matchAll(/\b(GET|POST|PUT|PATCH|DELETE) (\/[^\s?`]*)/g)) routes.add(`${m[1]} ${m[2]}`)
  }
  return [...routes]
}

const listed = routesOf(contract)

t.ok(listed.length > 50, `the contract's tables are read (${listed.length} routes)`)

t.test('every route of the contract is in openapi.yaml', async (t) => {
  for (const route of listed) {
    if (route in NOT_IN_SPEC || NOT_BUILT_YET.test(route)) continue
    const [method, path] = route.split(' ')
    t.ok(spec.paths[path]?.[method.toLowerCase()], route)
  }
})

t.test('and the document has no route the contract does not name, but the additions listed here', async (t) => {
  const named = new Set([...listed, ...Object.keys(ADDED)])
  for (const [path, operations] of Object.entries(spec.paths)) {
    for (const method of Object.keys(operations)) {
      if (['get', 'post', 'put', 'patch', 'delete'].includes(method)) t.ok(named.has(`${method.toUpperCase()} ${path}`), `${method.toUpperCase()} ${path} is in docs/API.md`)
    }
  }
})
