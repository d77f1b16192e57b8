import websocket from '@fastify/websocket'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { Type, type Static } from 'typebox'
import type { WebSocket } from 'ws'
import { AppError } from '../errors.ts'
import { Uuid } from '../schemas/common.ts'
import { ClientId, Content } from '../schemas/messages.ts'
import { CLOSE, type Hub, type Subscription } from './hub.ts'

const Ref = Type.String({ minLength: 1, maxLength: 100 })
export const ClientFrame = Type.Union([
  Type.Object({ type: Type.Literal('ping') }),
  Type.Object({ type: Type.Literal('typing'), conversation_id: Uuid, is_typing: Type.Boolean() }),
  Type.Object({
    type: Type.Literal('send'), ref: Ref, conversation_id: Uuid, content: Content,
    reply_to_id: Type.Optional(Uuid), client_id: Type.Optional(ClientId),
  }),
  Type.Object({ type: Type.Literal('read'), ref: Ref, message_id: Uuid }),
  Type.Object({
    type: Type.Literal('resume'),
    conversations: Type.Record(Type.String({ format: 'uuid' }), Type.Integer({ minimum: 0 }), { maxProperties: 10000 }),
  }),
])
type ClientFrame = Static<typeof ClientFrame>

const ajv = addFormats.default(new Ajv.default({ allErrors: false, strict: false }))
const validFrame = ajv.compile<ClientFrame>(ClientFrame)

export interface SocketOptions {
  hub: Hub
  maxPayload: number
  pingIntervalMs: number
}

declare module 'fastify' {
  interface FastifyRequest {
    subscription?: Subscription
  }
}

/** The token from `?token=` or from the subprotocol `bearer.<token>`. */
function tokenOf(request: FastifyRequest): string | undefined {
  const query = (request.query as { token?: string }).token
  if (query) return query
  const protocols = String(request.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim())
  return protocols.find((p) => p.startsWith('bearer.'))?.slice('bearer.'.length)
}

/** `GET /ws`: authenticate, register with the hub before the upgrade completes, then speak the frame protocol. */
export async function socketRoutes(app: FastifyInstance, opts: SocketOptions) {
  const { hub } = opts
  const { messages, conversations } = app.services
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
      const token = tokenOf(request)
      if (!token) return
      try {
        const { sub } = app.jwt.verify<{ sub: string }>(token)
        const user = await app.db.selectFrom('users').select('id').where('id', '=', sub).where('deleted_at', 'is', null).executeTakeFirst()
        if (!user) return
        const subscription = await hub.subscribe(user.id)
        request.subscription = subscription
        // An upgrade that never completes (the client went away) must not leave a user online forever.
        setTimeout(() => subscription.socket || hub.unsubscribe(subscription), 10_000).unref()
      } catch {
        // Left unset: the socket is closed with 4401 once open.
      }
    },
  }, (socket, request) => {
    const sub = request.subscription
    if (!sub) {
      socket.close(CLOSE.UNAUTHORIZED, 'missing, invalid or expired token')
      return
    }
    alive.add(socket)
    socket.on('pong', () => alive.add(socket))
    socket.on('close', () => hub.unsubscribe(sub))
    socket.on('error', () => {})
    socket.on('message', (raw, isBinary) => {
      void handle(raw.toString(), isBinary)
    })
    hub.attach(sub, socket)

    const reply = (frame: Record<string, unknown>) => hub.send(sub, frame as never)
    const fail = (ref: string | undefined, err: unknown) => {
      const known = err instanceof AppError
      if (!known) request.log.error({ err }, 'websocket frame failed')
      reply({ type: 'error', ...(ref && { ref }), error: known ? err.message : 'Internal server error', code: known ? err.code : 'INTERNAL_ERROR' })
    }

    async function handle(text: string, isBinary: boolean) {
      let frame: unknown
      try {
        frame = isBinary ? undefined : JSON.parse(text)
      } catch {
        frame = undefined
      }
      if (!validFrame(frame)) {
        const ref = typeof (frame as { ref?: unknown })?.ref === 'string' ? (frame as { ref: string }).ref : undefined
        const why = frame === undefined ? 'Frames are JSON text' : `Invalid frame: ${validFrame.errors?.[0]?.instancePath || ''} ${validFrame.errors?.[0]?.message ?? ''}`.trim()
        reply({ type: 'error', ...(ref && { ref }), error: why, code: 'BAD_FRAME' })
        return
      }
      const ref = 'ref' in frame ? frame.ref : undefined
      try {
        switch (frame.type) {
          case 'ping':
            return reply({ type: 'pong' })
          case 'typing':
            return await conversations.typing(frame.conversation_id, sub!.userId, frame.is_typing)
          case 'send': {
            const { message } = await messages.send(sub!.userId, frame)
            return reply({ type: 'ack', ref, data: message })
          }
          case 'read':
            await messages.markRead(frame.message_id, sub!.userId)
            return reply({ type: 'ack', ref, data: null })
          case 'resume':
            return await hub.resume(sub!, frame.conversations)
        }
      } catch (err) {
        fail(ref, err)
      }
    }
  })
}
