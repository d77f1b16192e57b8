import websocket from '@fastify/websocket'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import type { ServerResponse } from 'node:http'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { RawData, WebSocket } from 'ws'
import { AppError, unavailable } from '../errors.ts'
import type { Connection } from './connection.ts'
import type { Hub } from './hub.ts'
import { CLOSE, ClientFrame } from './protocol.ts'

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

// What a socket's shared listeners find on it (`this` is the socket): its connection, set once it is upgraded.
const CONN = Symbol('parley.connection')
type Attached = WebSocket & { [CONN]?: Connection }

/**
 * `GET /ws`: authenticate, register with the hub before the upgrade completes, then speak the frame protocol.
 * An idle socket should cost little more than ws's own objects (docs/SCALING.md, "An idle socket, byte by
 * byte"): once upgraded, nothing keeps the HTTP request, its reply or its logger, and every socket shares the
 * same listener functions, which find the socket's Connection on the socket itself.
 */
export async function socketRoutes(app: FastifyInstance, opts: SocketOptions) {
  const { hub } = opts
  await app.register(websocket, {
    options: {
      maxPayload: opts.maxPayload,
      // ws's default, stated because a replay writes its pages to the TCP socket itself (connection.ts), which
      // holds only while ws keeps no queue of its own, as it does when it compresses.
      perMessageDeflate: false,
      // A browser offering `bearer.<token>` needs it echoed back, or it drops the connection.
      handleProtocols: (protocols) => [...protocols].find((p) => p.startsWith('bearer.')) ?? false,
    },
  })

  const heartbeat = setInterval(() => {
    for (const socket of app.websocketServer.clients as Set<Attached>) {
      const conn = socket[CONN]
      // No pong since the last ping: the peer is gone.
      if (!conn?.alive) socket.terminate()
      else {
        conn.alive = false
        socket.ping()
      }
    }
  }, opts.pingIntervalMs)
  heartbeat.unref()
  app.addHook('onClose', async () => clearInterval(heartbeat))

  const handle = frameHandler(app, hub)
  function onPong(this: Attached) {
    this[CONN]!.alive = true
  }
  function onClose(this: Attached) {
    hub.unsubscribe(this[CONN]!)
  }
  function onMessage(this: Attached, raw: RawData, isBinary: boolean) {
    void handle(this[CONN]!, raw.toString(), isBinary)
  }
  // As @fastify/websocket's own handler, which it adds for each socket with the request and reply in its
  // closure: the error is logged with the upgrade's reqId and the socket terminated.
  function onError(this: Attached, err: Error) {
    app.log.error({ reqId: this[CONN]?.requestId, err }, err.message)
    this.terminate()
  }
  // Responses of upgrades under way, to be let go of their socket once it is a WebSocket.
  const responses = new WeakMap<FastifyRequest, ServerResponse>()

  app.get('/ws', {
    websocket: true,
    schema: { hide: true },
    preValidation: async (request, reply) => {
      responses.set(request, reply.raw)
      try {
        const credentials = await app.verifyAccess(app.accessToken(request, { query: true, subprotocol: true }))
        const connection = await hub.subscribe(credentials)
        connection.requestId = request.id
        request.connection = connection
        // An upgrade that never completes (the client went away) must not leave a user online forever.
        connection.awaitAttach(10_000, (c) => hub.unsubscribe(c))
      } catch (err) {
        // Told once the socket is open: a browser cannot read an HTTP status of a refused upgrade.
        const tooMany = err instanceof AppError && err.code === 'TOO_MANY_SOCKETS'
        request.refusal = tooMany
          ? { code: CLOSE.POLICY, reason: err.message }
          : { code: CLOSE.UNAUTHORIZED, reason: err instanceof AppError ? err.message : 'missing, invalid or expired token' }
      }
    },
  }, (ws, request) => {
    const socket = ws as Attached
    // The upgrade is done: the HTTP response (and through it the request) need not live as long as the
    // socket. It never answers (the upgrade wrote its 101 itself), so no hook or metric waits for it.
    const response = responses.get(request)
    responses.delete(request)
    if (response?.socket) response.detachSocket(response.socket)
    socket.removeAllListeners('error')
    socket.on('error', onError)
    const conn = request.connection
    if (!conn) {
      socket.close(request.refusal?.code ?? CLOSE.UNAUTHORIZED, request.refusal?.reason ?? 'missing, invalid or expired token')
      return
    }
    // An upgrade never completes as a response: its one log line is here.
    request.log.info({ req: request }, 'websocket opened')
    request.connection = undefined
    socket[CONN] = conn
    conn.alive = true
    socket.on('pong', onPong)
    socket.on('close', onClose)
    socket.on('message', onMessage)
    conn.attach(socket, request.raw.socket)
  })
}

// Frames refused in a row for the budget before the socket is closed (POLICY): a client that ignores the
// RATE_LIMITED errors is not slowed by them, only told, so it is cut off.
const MAX_REFUSED = 20

/** Client frames, for every socket: validated, charged to the user's request budget, answered in its order. */
function frameHandler(app: FastifyInstance, hub: Hub) {
  const { messages, memberState, reactions } = app.services
  const fail = (conn: Connection, ref: string | undefined, failure: unknown) => {
    const err = unavailable(failure) ?? failure
    const known = err instanceof AppError
    if (!known) app.log.error({ reqId: conn.requestId, err }, 'websocket frame failed')
    conn.send({ type: 'error', ...(ref && { ref }), error: known ? err.message : 'Internal server error', code: known ? err.code : 'INTERNAL_ERROR' })
  }

  async function run(conn: Connection, frame: ClientFrame): Promise<void> {
    switch (frame.type) {
      case 'ping':
        return conn.send({ type: 'pong' })
      case 'typing':
        return memberState.typing(frame.conversation_id, conn.userId, frame.is_typing)
      case 'send': {
        const { message } = await messages.send(conn.userId, frame)
        return conn.send({ type: 'ack', ref: frame.ref, data: message })
      }
      case 'edit':
        return conn.send({ type: 'ack', ref: frame.ref, data: await messages.edit(frame.message_id, conn.userId, frame.content) })
      case 'delete':
        return conn.send({ type: 'ack', ref: frame.ref, data: await messages.remove(frame.message_id, conn.userId) })
      case 'react':
        return conn.send({ type: 'ack', ref: frame.ref, data: await reactions.react(frame.message_id, conn.userId, frame.emoji) })
      case 'unreact':
        return conn.send({ type: 'ack', ref: frame.ref, data: await reactions.unreact(frame.message_id, conn.userId, frame.emoji) })
      case 'read':
        await messages.markRead(frame.message_id, conn.userId)
        return conn.send({ type: 'ack', ref: frame.ref, data: null })
      case 'resume':
        return hub.resume(conn, frame.conversations)
      case 'auth':
        hub.reauthenticate(conn, await app.verifyAccess(frame.token))
        return conn.send({ type: 'ack', ref: frame.ref, data: null })
    }
  }

  return async (conn: Connection, text: string, isBinary: boolean): Promise<void> => {
    let frame: unknown
    try {
      frame = isBinary ? undefined : JSON.parse(text)
    } catch {
      frame = undefined
    }
    const ref = typeof (frame as { ref?: unknown })?.ref === 'string' ? (frame as { ref: string }).ref : undefined
    const budget = await app.spendBudget(conn.userId)
    if (!budget.allowed) {
      if (++conn.refused > MAX_REFUSED) return conn.close(CLOSE.POLICY, 'rate limit exceeded')
      return fail(conn, ref, new AppError(429, 'RATE_LIMITED', `Too many requests; retry in ${Math.max(1, Math.ceil(budget.retryAfterMs / 1000))} s`))
    }
    conn.refused = 0
    if (!validFrame(frame)) {
      const why = frame === undefined ? 'Frames are JSON text' : `Invalid frame: ${validFrame.errors?.[0]?.instancePath || ''} ${validFrame.errors?.[0]?.message ?? ''}`.trim()
      return conn.send({ type: 'error', ...(ref && { ref }), error: why, code: 'BAD_FRAME' })
    }
    try {
      await run(conn, frame)
    } catch (err) {
      fail(conn, ref, err)
    }
  }
}
