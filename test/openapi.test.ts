import { readFile } from 'node:fs/promises'
import t from 'tap'
import { openapiYaml } from '../scripts/openapi.ts'
import { buildTestApp } from './helper.ts'

t.test('openapi.yaml is up to date with the route schemas', async (t) => {
  const committed = await readFile(new URL('../openapi.yaml', import.meta.url), 'utf8')
  t.ok(committed === (await openapiYaml()), 'openapi.yaml is stale: run `npm run openapi` and commit it')
})

t.test('/openapi.json and /docs are served', async (t) => {
  const { app } = await buildTestApp(t)
  const spec = (await app.inject('/openapi.json')).json()
  t.equal(spec.openapi, '3.0.3')
  t.match(spec.components.securitySchemes, { bearer: { type: 'http', scheme: 'bearer' }, password: { type: 'oauth2' } })
  const routes = Object.entries(spec.paths).flatMap(([path, ops]) => Object.keys(ops as object).map((m) => `${m.toUpperCase()} ${path}`))
  for (const route of [
    'POST /auth/register', 'POST /auth/login', 'POST /auth/refresh', 'POST /auth/logout',
    'GET /users/me', 'PATCH /users/me', 'DELETE /users/me', 'GET /users', 'GET /users/{id}',
    'POST /conversations', 'GET /conversations', 'GET /conversations/{id}', 'PATCH /conversations/{id}',
    'GET /conversations/{id}/participants', 'POST /conversations/{id}/participants',
    'DELETE /conversations/{id}/participants/{user_id}', 'PATCH /conversations/{id}/participants/{user_id}',
    'POST /conversations/{id}/leave', 'GET /conversations/{id}/messages', 'DELETE /conversations/{id}/messages',
    'POST /conversations/{id}/typing', 'POST /messages', 'GET /messages/{id}', 'PATCH /messages/{id}',
    'DELETE /messages/{id}', 'POST /messages/{id}/read', 'GET /messages/{id}/receipts',
    'GET /messages/{id}/edits', 'GET /messages/{id}/thread', 'POST /messages/{id}/pin', 'DELETE /messages/{id}/pin',
    'GET /conversations/{id}/pins', 'POST /messages/{id}/forward', 'POST /messages/{id}/reactions', 'DELETE /messages/{id}/reactions/{emoji}',
    'PATCH /conversations/{id}/settings', 'POST /messages/{id}/unread', 'POST /users/{id}/block', 'DELETE /users/{id}/block', 'GET /users/me/blocks',
    'GET /files/{id}', 'GET /files/{id}/url', 'GET /files/{id}/thumbnail',
    'GET /search/messages',
    'GET /health/live', 'GET /health/ready',
  ]) t.ok(routes.includes(route), `${route} is documented`)
  t.same(spec.paths['/messages'].post.security, [{ bearer: [] }, { password: [] }], 'secured routes name the schemes')
  const docs = await app.inject('/docs/')
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-type'], /text\/html/)
})
