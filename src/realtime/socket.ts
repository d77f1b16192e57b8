import websocket from '@fastify/websocket'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifyBaseLogger, FastifyInstance } from 'fastify'
import type { WebSocket } from 'ws'
import { AppError } from '../errors.ts'
import type { Connection } from './connection.ts'
import type { Hub } from './hub.ts'
import { CLOSE, ClientFrame, type Frame } from './protocol.ts'

const ajv = addFormats.default(new Ajv.default({ allErrors: false, strict: false }))
const validFrame = ajv.compile<ClientFrame>(ClientFrame)

export interface SocketOptions {
  hub: Hub
  maxPayload: number
  pingIntervalMs: number
}

declare module 'fastify' {
  interface FastifyRequest {
    connection?: Connection
    /** Why the upgrade was refused, told to the client as the socket's close once it is open. */
    refusal?: { code: number; reason: string }
  }
}

/** `GET /ws`: authenticate, register with the hub before the upgrade completes, then speak the frame protocol. */
export async function socketRoutes(app: FastifyInstance, opts: SocketOptions) {
  const { hub } = opts
  await app.register(websocket, {
    options: {
      maxPayload: opts.maxPayload,
      // A browser offering `bearer.<token>` needs it echoed back, or it drops the connection.
      handleProtocols: (protocols) => [...protocols].find((p) => p.startsWith('bearer.')) ?? false,
    },
  })

  const alive = new WeakSet<WebSocket>()
  const heartbeat = setInterval(() => {
    for (const socket of app.websocketServer.clients) {
      // No pong since the last ping: the peer is gone.
      if (!alive.has(socket)) socket.terminate()
      else {
        alive.delete(socket)
        socket.ping()
      }
    }
  }, opts.pingIntervalMs)
  heartbeat.unref()
  app.addHook('onClose', async () => clearInterval(heartbeat))

  app.get('/ws', {
    websocket: true,
    schema: { hide: true },
    preValidation: async (request) => {
      try {
        const credentials = await app.verifyAccess(app.accessToken(request, { query: true, subprotocol: true }))
        const connection = await hub.subscribe(credentials)
        request.connection = connection
        // An upgrade that never completes (the client went away) must not leave a user online forever.
        setTimeout(() => connection.attached || hub.unsubscribe(connection), 10_000).unref()
      } catch (err) {
        // Told once the socket is open: a browser cannot read an HTTP status of a refused upgrade.
        const tooMany = err instanceof AppError && err.code === 'TOO_MANY_SOCKETS'
        request.refusal = tooMany
          ? { code: CLOSE.POLICY, reason: err.message }
          : { code: CLOSE.UNAUTHORIZED, reason: err instanceof AppError ? err.message : 'missing, invalid or expired token' }
      }
    },
  }, (socket, request) => {
    const conn = request.connection
    if (!conn) {
      socket.close(request.refusal?.code ?? CLOSE.UNAUTHORIZED, request.refusal?.reason ?? 'missing, invalid or expired token')
      return
    }
    // An upgrade never completes as a response: its one log line is here.
    request.log.info({ req: request }, 'websocket opened')
    alive.add(socket)
    socket.on('pong', () => alive.add(socket))
    socket.on('close', () => hub.unsubscribe(conn))
    socket.on('error', () => {})
    const handle = frameHandler(app, hub, conn, request.log)
    socket.on('message', (raw, isBinary) => void handle(raw.toString(), isBinary))
    conn.attach(socket)
  })
}

// Frames refused in a row for the budget before the socket is closed (POLICY): a client that ignores the
// RATE_LIMITED errors is not slowed by them, only told, so it is cut off.
const MAX_REFUSED = 20

/** One socket's client frames: validated, charged to the user's request budget, answered in its order. */
function frameHandler(app: FastifyInstance, hub: Hub, conn: Connection, log: FastifyBaseLogger) {
  const { messages, conversations } = app.services
  let refused = 0
  const reply = (frame: Frame) => conn.send(frame)
  const fail = (ref: string | undefined, err: unknown) => {
    const known = err instanceof AppError
    if (!known) log.error({ err }, 'websocket frame failed')
    reply({ type: 'error', ...(ref && { ref }), error: known ? err.message : 'Internal server error', code: known ? err.code : 'INTERNAL_ERROR' })
  }

  async function run(frame: ClientFrame, ref: string | undefined): Promise<void> {
    switch (frame.type) {
      case 'ping':
        return reply({ type: 'pong' })
      case 'typing':
        return conversations.typing(frame.conversation_id, conn.userId, frame.is_typing)
      case 'send': {
        const { message } = await messages.send(conn.userId, frame)
        return reply({ type: 'ack', ref, data: message })
      }
      case 'read':
        await messages.markRead(frame.message_id, conn.userId)
        return reply({ type: 'ack', ref, data: null })
      case 'resume':
        return hub.resume(conn, frame.conversations)
      case 'auth':
        hub.reauthenticate(conn, await app.verifyAccess(frame.token))
        return reply({ type: 'ack', ref, data: null })
    }
  }

  return async (text: string, isBinary: boolean): Promise<void> => {
    let frame: unknown
    try {
      frame = isBinary ? undefined : JSON.parse(text)
    } catch {
      frame = undefined
    }
    const ref = typeof (frame as { ref?: unknown })?.ref === 'string' ? (frame as { ref: string }).ref : undefined
    const budget = await app.spendBudget(conn.userId)
    if (!budget.allowed) {
      if (++refused > MAX_REFUSED) return conn.close(CLOSE.POLICY, 'rate limit exceeded')
      return fail(ref, new AppError(429, 'RATE_LIMITED', `Too many requests; retry in ${Math.max(1, Math.ceil(budget.retryAfterMs / 1000))} s`))
    }
    refused = 0
    if (!validFrame(frame)) {
      const why = frame === undefined ? 'Frames are JSON text' : `Invalid frame: ${validFrame.errors?.[0]?.instancePath || ''} ${validFrame.errors?.[0]?.message ?? ''}`.trim()
      return reply({ type: 'error', ...(ref && { ref }), error: why, code: 'BAD_FRAME' })
    }
    try {
      await run(frame, ref)
    } catch (err) {
      fail(ref, err)
    }
  }
}
