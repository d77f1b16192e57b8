import { sql } from 'kysely'
import { Type } from 'typebox'
import type { App } from './types.ts'

const Status = Type.Object({ status: Type.String(), checks: Type.Optional(Type.Record(Type.String(), Type.Boolean())) })

export default async function healthRoutes(app: App) {
  app.get('/health/live', {
    schema: { tags: ['health'], summary: 'The process is up', response: { 200: Status } },
  }, async () => ({ status: 'ok' }))

  app.get('/health/ready', {
    schema: { tags: ['health'], summary: 'Ready to serve: the database answers and the listener is connected', response: { 200: Status, 503: Status } },
  }, async (_request, reply) => {
    const database = await sql`SELECT 1`.execute(app.db).then(() => true, () => false)
    const checks: Record<string, boolean> = { database }
    if (app.hasDecorator('realtime')) checks.listener = app.realtime.listener.up
    const ready = Object.values(checks).every(Boolean)
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks })
  })
}
