import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Logger, type RunnerOptions, runOnce } from 'graphile-worker'
import pg from 'pg'
import type { Config } from '../config.ts'
import { webhookDelivery } from '../outgoing/webhook-delivery.ts'
import { webPushDelivery } from '../outgoing/web-push.ts'

export const JOBS_APPLICATION_NAME = 'parley-jobs'

/**
 * The job queue's worker in this instance (graphile-worker, on PostgreSQL: the jobs are rows its own schema
 * keeps, so they outlive a restart and any instance runs them): webhook deliveries and Web Push, added by the
 * event triggers (triggers/outgoing.sql). graphile-worker's `run` would keep a LISTEN connection of its own, and
 * every commit that notifies (each send) would wake it (src/realtime/events.ts, JOBS_CHANNEL); so the instance's
 * listener hears the queue's announcements instead, and each one wakes a `runOnce`: the queue run down with
 * JOBS_CONCURRENCY jobs at a time, then nothing held. A timer looks every JOBS_POLL_INTERVAL for retries come
 * due and for announcements missed while the listener reconnected.
 */
export default fp(
  async function jobs(app: FastifyInstance, opts: { config: Config; databaseUrl: string }) {
    const { config } = opts
    const post = { timeoutMs: config.WEBHOOK_TIMEOUT_MS, allowPrivate: config.WEBHOOK_ALLOW_PRIVATE }
    const vapid = config.VAPID_PUBLIC_KEY && { subject: config.VAPID_SUBJECT, publicKey: config.VAPID_PUBLIC_KEY, privateKey: config.VAPID_PRIVATE_KEY! }
    const taskList = {
      webhook_delivery: webhookDelivery(app.db, app.services.conversations, { ...post, maxAttempts: config.WEBHOOK_MAX_ATTEMPTS }),
      // Without VAPID keys (removed after browsers subscribed) a job has nothing to send with.
      web_push: vapid ? webPushDelivery(app.db, { vapid, intervalS: config.PUSH_INTERVAL, post }) : async () => {},
    }
    // A receiver that fails is the receiver's news, not this service's error: warnings, with the job's scope.
    const logger = new Logger((scope) => (level, message, meta) => {
      const line = { jobs: scope, ...meta }
      if (level === 'error' || level === 'warning') app.log.warn(line, message)
      else app.log.debug(line, message)
    })
    // Named, so that an operator (or a test) tells its connections from the app's in pg_stat_activity.
    const pool = new pg.Pool({ connectionString: opts.databaseUrl, application_name: JOBS_APPLICATION_NAME, max: config.JOBS_CONCURRENCY })
    pool.on('error', (err) => app.log.warn({ err }, 'job queue connection lost'))
    // One object, so that graphile-worker compiles it once (it caches by identity).
    const options: RunnerOptions = { pgPool: pool, concurrency: config.JOBS_CONCURRENCY, noHandleSignals: true, logger, taskList }
    const drain = new Drain(() => runOnce(options), (err) => app.log.warn({ err }, 'job queue run failed'))
    const wake = () => drain.wake()
    let timer: NodeJS.Timeout | undefined
    app.addHook('onReady', async () => {
      app.realtime.listener.on('jobs', wake).on('up', wake)
      timer = setInterval(wake, config.JOBS_POLL_INTERVAL)
      timer.unref()
      wake()
    })
    app.addHook('onClose', async () => {
      clearInterval(timer)
      app.realtime.listener.off('jobs', wake).off('up', wake)
      await drain.stop()
      await pool.end()
    })
  },
  { name: 'jobs', dependencies: ['realtime'] },
)

/** Runs `run` when woken, one run at a time; a wake during a run means one more run after it. */
class Drain {
  private running: Promise<void> | undefined
  private again = false
  private stopped = false

  constructor(
    private readonly run: () => Promise<void>,
    private readonly failed: (err: unknown) => void,
  ) {}

  wake(): void {
    if (this.stopped) return
    if (this.running) {
      this.again = true
      return
    }
    this.running = this.loop().finally(() => {
      this.running = undefined
    })
  }

  private async loop(): Promise<void> {
    do {
      this.again = false
      await this.run().catch(this.failed)
    } while (this.again && !this.stopped)
  }

  /** No run starts after this; the one running finishes its jobs. */
  async stop(): Promise<void> {
    this.stopped = true
    await this.running
  }
}
