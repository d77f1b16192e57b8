import { IdParams, NoContent, SIGNED_IN } from '../schemas/common.ts'
import { errors } from '../schemas/error-responses.ts'
import { CreatePushSubscription, PushSubscription, VapidPublicKey } from '../schemas/outgoing.ts'
import { type App, secured } from './types.ts'

export default async function pushRoutes(app: App) {
  const { push } = app.services
  app.addHook('onRequest', app.authenticate)

  app.get('/push/vapid-public-key', {
    schema: {
      tags: ['push'],
      summary: "The server's VAPID public key, for PushManager.subscribe",
      operationId: 'getVapidPublicKey',
      security: secured,
      response: { 200: VapidPublicKey, ...errors(...SIGNED_IN, 'PUSH_NOT_CONFIGURED') },
    },
  }, async () => push.publicKey())

  app.post('/push/subscriptions', {
    schema: {
      tags: ['push'],
      summary: 'Subscribe this browser to Web Push',
      description:
        'A new message in one of your conversations, while you have no socket open anywhere, sends a notification to each subscribed browser (not for muted conversations, at most one per conversation per PUSH_INTERVAL). ' +
        'The payload (encrypted for the browser) is `{conversation_id, message_id, title, body, mention, reply}`. The same endpoint again replaces its keys.',
      operationId: 'subscribePush',
      security: secured,
      body: CreatePushSubscription,
      response: { 201: PushSubscription, ...errors('VALIDATION_ERROR', 'URL_NOT_ALLOWED', ...SIGNED_IN, 'PUSH_NOT_CONFIGURED') },
    },
  }, async (request, reply) => reply.code(201).send(await push.subscribe(request.userId, request.body)))

  app.delete('/push/subscriptions/:id', {
    schema: {
      tags: ['push'],
      summary: 'Unsubscribe a browser',
      operationId: 'unsubscribePush',
      security: secured,
      params: IdParams,
      response: { 204: NoContent, ...errors('VALIDATION_ERROR', ...SIGNED_IN, 'PUSH_SUBSCRIPTION_NOT_FOUND') },
    },
  }, async (request, reply) => {
    await push.unsubscribe(request.userId, request.params.id)
    return reply.code(204).send(null)
  })
}
