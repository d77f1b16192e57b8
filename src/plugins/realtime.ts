import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { Config } from '../config.ts'
import type { EphemeralEvent } from '../realtime/events.ts'
import { Hub } from '../realtime/hub.ts'
import { Listener } from '../realtime/listener.ts'
import { Presence } from '../realtime/presence.ts'
import { CLOSE } from '../realtime/protocol.ts'
import { socketRoutes } from '../realtime/socket.ts'

declare module 'fastify' {
  interface FastifyInstance {
    realtime: { listener: Listener; hub: Hub; presence: Presence }
  }
}

/**
 * Live delivery: the LISTEN connection, the hub of this instance's sockets, and `GET /ws`.
 * The listener connects when the app is ready and closes after the sockets.
 */
export default fp(
  async function realtime(app: FastifyInstance, opts: { config: Config; databaseUrl: string }) {
    const { config } = opts
    const listener: Listener = new Listener({
      connectionString: opts.databaseUrl,
      db: app.db,
      served: (): Iterable<string> => hub.served(),
      probeIntervalMs: config.LISTENER_PROBE_INTERVAL,
      probeTimeoutMs: Math.max(1000, config.LISTENER_PROBE_INTERVAL),
    })
    const presence = new Presence(app.db, { heartbeatMs: config.PRESENCE_HEARTBEAT, ttlMs: config.PRESENCE_TTL })
    const hub: Hub = new Hub(app.db, listener, app.services.conversations, presence, {
      maxBufferedBytes: config.WS_MAX_BUFFERED,
      typingTtlMs: config.TYPING_TTL,
      maxSocketsPerUser: config.WS_MAX_SOCKETS_PER_USER,
      observeLag: app.hasDecorator('metrics') ? (ms) => app.metrics.listenerLag.observe(ms / 1000) : undefined,
    })
    listener.on('down', (err: Error) => {
      app.openSessions.setListening(false)
      app.log.warn({ err }, 'listener connection lost; reconnecting')
    })
    listener.on('up', () => {
      app.openSessions.setListening(true)
      app.log.info('listener connected')
    })
    // Every instance hears every session end: requests stop trusting what it remembered of them.
    listener.on('ephemeral', (e: EphemeralEvent) => {
      if (e.type === 'session_ended') app.openSessions.forgetSessions(e.session_ids as string[])
      else if (e.type === 'account_deleted') app.openSessions.forgetUser(e.user_id as string)
    })
    listener.on('warning', (err: Error) => app.log.warn({ err }, 'listener could not fill from the event log'))
    app.decorate('realtime', { listener, hub, presence })

    app.addHook('onReady', async () => {
      await presence.start()
      await listener.start()
    })
    // Before @fastify/websocket's own preClose: clients are told to go elsewhere, with 1001.
    app.addHook('preClose', async () => hub.closeAll(CLOSE.GOING_AWAY, 'server going away'))
    app.addHook('onClose', async () => {
      app.openSessions.setListening(false)
      await presence.stop().catch((err) => app.log.warn({ err }, 'could not clear presence'))
      await listener.stop()
    })

    await app.register(socketRoutes, { hub, maxPayload: config.WS_MAX_PAYLOAD, pingIntervalMs: config.WS_PING_INTERVAL })
  },
  { name: 'realtime' },
)
