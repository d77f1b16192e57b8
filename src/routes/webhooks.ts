import { IdParams, NoContent, SIGNED_IN } from '../schemas/common.ts'
import { errors } from '../schemas/error-responses.ts'
import { CreateWebhook, NewWebhook, Webhook, WebhookWithDeliveries } from '../schemas/outgoing.ts'
import { Type } from 'typebox'
import { type App, secured } from './types.ts'

export default async function webhookRoutes(app: App) {
  const { webhooks } = app.services
  app.addHook('onRequest', app.authenticate)

  app.post('/webhooks', {
    schema: {
      tags: ['webhooks'],
      summary: 'Register a webhook',
      description:
        "Each event of the conversation (or, without `conversation_id`, of every direct conversation of yours) whose type is in `events` is POSTed to `url` as `{type, conversation_id, seq, data}`, as you may see it, signed: " +
        '`Parley-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>`, and `Parley-Event-Id: <conversation_id>:<seq>` to dedupe by. ' +
        "A group's webhooks are its admins'. A delivery not answered 2xx is retried with backoff; after WEBHOOK_MAX_ATTEMPTS the webhook is disabled (its `disabled_reason` says why). Redirects are not followed. The secret is shown only here.",
      operationId: 'createWebhook',
      security: secured,
      body: CreateWebhook,
      response: { 201: NewWebhook, ...errors('VALIDATION_ERROR', 'URL_NOT_ALLOWED', ...SIGNED_IN, 'NOT_ADMIN', 'CONVERSATION_NOT_FOUND', 'TOO_MANY_WEBHOOKS') },
    },
  }, async (request, reply) => reply.code(201).send(await webhooks.create(request.userId, request.body)))

  app.get('/webhooks', {
    schema: {
      tags: ['webhooks'],
      summary: 'Your webhooks',
      operationId: 'listWebhooks',
      security: secured,
      response: { 200: Type.Array(Webhook), ...errors(...SIGNED_IN) },
    },
  }, async (request) => webhooks.list(request.userId))

  app.get('/webhooks/:id', {
    schema: {
      tags: ['webhooks'],
      summary: 'One of your webhooks, with its latest deliveries and their errors',
      operationId: 'getWebhook',
      security: secured,
      params: IdParams,
      response: { 200: WebhookWithDeliveries, ...errors('VALIDATION_ERROR', ...SIGNED_IN, 'WEBHOOK_NOT_FOUND') },
    },
  }, async (request) => webhooks.get(request.userId, request.params.id))

  app.delete('/webhooks/:id', {
    schema: {
      tags: ['webhooks'],
      summary: 'Delete one of your webhooks (deliveries not yet made are dropped)',
      operationId: 'deleteWebhook',
      security: secured,
      params: IdParams,
      response: { 204: NoContent, ...errors('VALIDATION_ERROR', ...SIGNED_IN, 'WEBHOOK_NOT_FOUND') },
    },
  }, async (request, reply) => {
    await webhooks.remove(request.userId, request.params.id)
    return reply.code(204).send(null)
  })
}
