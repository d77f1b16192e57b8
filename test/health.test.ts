import t from 'tap'
import { assertError, buildTestApp } from './helper.ts'

t.test('liveness and readiness', async (t) => {
  const { app } = await buildTestApp(t)
  const live = await app.inject('/health/live')
  t.equal(live.statusCode, 200)
  t.equal(live.json().status, 'ok')
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 200)
  t.same(ready.json().checks, { database: true, listener: true })
})

t.test('readiness fails when the database is gone', async (t) => {
  const { app, db } = await buildTestApp(t)
  await app.ready()
  await db.destroy()
  const ready = await app.inject('/health/ready')
  t.equal(ready.statusCode, 503)
  t.equal(ready.json().checks.database, false)
})

t.test('unknown routes answer in the error shape', async (t) => {
  const { app } = await buildTestApp(t)
  const res = await app.inject('/nope')
  assertError(t, res, 404, 'ROUTE_NOT_FOUND')
})
