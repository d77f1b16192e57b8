import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { Logger, type Runner, run } from 'graphile-worker'
import type { Config } from '../config.ts'
import { webhookDelivery } from '../outgoing/webhook-delivery.ts'
import { webPushDelivery } from '../outgoing/web-push.ts'

export const JOBS_APPLICATION_NAME = 'parley-jobs'

/**
 * The job queue's worker in this instance (graphile-worker, on PostgreSQL: the jobs are rows its own schema
 * keeps, so they outlive a restart and any instance runs them): webhook deliveries and Web Push, added by the
 * event triggers (triggers/outgoing.sql). It starts when the app is ready and finishes its running jobs on close.
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
    let runner: Runner | undefined
    app.addHook('onReady', async () => {
      // Named, so that an operator (or a test) tells its connections from the app's in pg_stat_activity.
      const url = new URL(opts.databaseUrl)
      url.searchParams.set('application_name', JOBS_APPLICATION_NAME)
      runner = await run({
        connectionString: url.toString(),
        // Its own few connections: one stays LISTENing for new jobs, the others run them.
        maxPoolSize: config.JOBS_CONCURRENCY + 1,
        concurrency: config.JOBS_CONCURRENCY,
        pollInterval: config.JOBS_POLL_INTERVAL,
        noHandleSignals: true,
        logger,
        taskList,
      })
    })
    app.addHook('onClose', async () => {
      await runner?.stop()
    })
  },
  { name: 'jobs' },
)
