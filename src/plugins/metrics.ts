import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { sql } from 'kysely'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { poolOf } from '../database.ts'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: { registry: Registry; listenerLag: Histogram }
  }
}

/** The route label of requests that matched no route: raw URLs would make the label unbounded. */
export const UNMATCHED = 'unmatched'

let processMetrics: Registry | undefined

/**
 * CPU, memory, event loop and GC are the process's, not an app's: one set per process, however many apps it
 * builds (the tests build dozens, and each collectDefaultMetrics starts an event-loop monitor and a GC
 * observer that are never stopped). Each app merges them into its own registry.
 */
function processRegistry(): Registry {
  if (!processMetrics) {
    processMetrics = new Registry()
    collectDefaultMetrics({ register: processMetrics })
  }
  return processMetrics
}

/**
 * `GET /metrics` in Prometheus text format, for scraping each instance directly (not in the OpenAPI document;
 * the load balancer denies it from outside: docs/DESIGN-NOTES.md). Registers before the routes, so that its
 * hook times all of them.
 *
 * Counts kept by the realtime classes (frames, events, replays) are plain numbers there, read at scrape
 * time: delivering a frame costs a Map update, not a metric call.
 */
export default fp(
  async function metrics(app: FastifyInstance) {
    const registry = new Registry()
    const registers = [registry]
    const realtime = () => (app.hasDecorator('realtime') ? app.realtime : undefined)

    const http = new Histogram({
      name: 'parley_http_request_duration_seconds',
      help: `Time to answer an HTTP request, by method, route pattern (${UNMATCHED} for no route) and status code`,
      labelNames: ['method', 'route', 'status_code'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    })
    app.addHook('onResponse', (request, reply, done) => {
      http.observe({ method: request.method, route: request.routeOptions.url ?? UNMATCHED, status_code: reply.statusCode }, reply.elapsedTime / 1000)
      done()
    })

    new Gauge({
      name: 'parley_ws_open_sockets',
      help: 'WebSockets open on this instance (authenticated ones)',
      registers,
      collect() {
        this.set(realtime()?.hub.socketCount ?? 0)
      },
    })
    new Counter({
      name: 'parley_ws_frames_sent_total',
      help: 'Frames written to this instance\'s WebSockets, by frame type',
      labelNames: ['type'] as const,
      registers,
      collect() {
        // The hub's totals are the truth: copied over, not added up here.
        this.reset()
        for (const [type, n] of realtime()?.hub.framesSent ?? []) this.inc({ type }, n)
      },
    })
    // A total the realtime classes keep themselves, copied over at scrape time rather than added up here.
    const mirrored = (name: string, help: string, read: () => number) =>
      new Counter({ name, help, registers, collect() { this.reset(); this.inc(read()) } })
    mirrored('parley_ws_too_slow_total', 'WebSockets closed (4008) because their unsent bytes passed WS_MAX_BUFFERED', () => realtime()?.hub.tooSlow ?? 0)
    mirrored('parley_listener_events_total', 'Conversation events the listener handed on to the hub; rate() of it is events per second', () => realtime()?.listener.events ?? 0)
    mirrored(
      'parley_listener_replays_total',
      'Listener reconnects after a dropped LISTEN connection, each replaying the served conversations from the event log',
      () => realtime()?.listener.replays ?? 0,
    )
    new Gauge({
      name: 'parley_listener_connected',
      help: '1 while the LISTEN connection is up, else 0',
      registers,
      collect() {
        this.set(realtime()?.listener.up ? 1 : 0)
      },
    })
    const listenerLag = new Histogram({
      name: 'parley_listener_lag_seconds',
      help: 'From a change in PostgreSQL (its trigger\'s clock, just before commit; for events read from the log, the row\'s transaction start) ' +
        'to its frames written to this instance\'s sockets; events with no local recipient are not counted',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    })
    // Before the queue-usage gauge: collected in registration order, the pool is read before that gauge's own
    // query takes a connection, so a scrape does not see itself waiting.
    const pool = poolOf(app.db)
    if (pool) {
      const poolGauge = (name: string, help: string, read: () => number) =>
        new Gauge({ name, help, registers, collect() { this.set(read()) } })
      poolGauge('parley_db_pool_clients', 'Connections the pg pool holds (busy and idle)', () => pool.totalCount)
      poolGauge('parley_db_pool_idle_clients', 'Connections of the pg pool that are idle', () => pool.idleCount)
      poolGauge('parley_db_pool_waiting_requests', 'Queries waiting for a connection of the pg pool', () => pool.waitingCount)
      poolGauge('parley_db_pool_max_clients', 'The pg pool\'s size limit (DB_POOL_MAX)', () => pool.options.max ?? 10)
    }

    new Gauge({
      name: 'parley_pg_notification_queue_usage',
      help: 'pg_notification_queue_usage(): the fraction of the database\'s NOTIFY queue in use (NaN if it could not be read)',
      registers,
      async collect() {
        // A database that does not answer must not break the scrape: the other metrics still say why.
        const usage = await sql<{ usage: number }>`SELECT pg_notification_queue_usage() AS usage`
          .execute(app.db)
          .then((r) => r.rows[0].usage, () => Number.NaN)
        this.set(usage)
      },
    })

    const all = Registry.merge([processRegistry(), registry])
    app.decorate('metrics', { registry: all, listenerLag })
    app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
      reply.type(all.contentType)
      return all.metrics()
    })
  },
  { name: 'metrics' },
)
