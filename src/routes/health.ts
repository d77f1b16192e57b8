import { sql } from 'kysely'
import { Type } from 'typebox'
import { named } from '../schemas/named.ts'
import type { App } from './types.ts'

const Health = named('Health', Type.Object(
  { status: Type.String(), checks: Type.Optional(Type.Record(Type.String(), Type.Boolean(), { description: 'Each dependency: up or not' })) },
  { description: 'Whether this instance is up, or ready to serve' },
))

export default async function healthRoutes(app: App) {
  app.get('/health/live', {
    schema: { tags: ['health'], summary: 'The process is up', operationId: 'checkLive', security: [], response: { 200: Health } },
  }, async () => ({ status: 'ok' }))

  app.get('/health/ready', {
    schema: {
      tags: ['health'], summary: 'Ready to serve: the database answers and the listener is connected', operationId: 'checkReady', security: [],
      response: { 200: Health, 503: Health },
    },
  }, async (_request, reply) => {
    const database = await sql`SELECT 1`.execute(app.db).then(() => true, () => false)
    const checks: Record<string, boolean> = { database }
    if (app.hasDecorator('realtime')) checks.listener = app.realtime.listener.up
    const ready = Object.values(checks).every(Boolean)
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not ready', checks })
  })
}
