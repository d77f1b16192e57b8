import { Type, type Static } from 'typebox'
import { LOG_EVENT_TYPES } from '../realtime/protocol.ts'
import { Nullable, Timestamp, Uuid } from './common.ts'
import { named } from './named.ts'

const EventType = Type.Union(LOG_EVENT_TYPES.map((t) => Type.Literal(t)), { description: 'A type of the conversation log\'s events (docs/PROTOCOL.md)' })

const webhookFields = {
  id: Uuid,
  url: Type.String({ description: 'Where each event is POSTed' }),
  events: Type.Array(EventType),
  conversation_id: Nullable(Uuid, { description: "The conversation whose events it gets; null: every one of its owner's direct conversations" }),
  created_at: Timestamp,
  disabled_at: Nullable(Timestamp, { description: 'Set when deliveries kept failing, or its owner lost the right to it: nothing more is sent' }),
  disabled_reason: Nullable(Type.String({ description: 'Why, for its owner to read' })),
}

export const Webhook = named('Webhook', Type.Object(webhookFields, { description: 'An outgoing webhook; its secret is shown only when it is made' }))
export type Webhook = Static<typeof Webhook>

export const NewWebhook = named('NewWebhook', Type.Object(
  { ...webhookFields, secret: Type.String({ description: 'Signs every delivery (Parley-Signature); shown this once' }) },
  { description: 'A webhook just made, with its secret' },
))

export const WebhookDelivery = named('WebhookDelivery', Type.Object({
  event_id: Type.String({ description: '`<conversation_id>:<seq>`, as in the Parley-Event-Id header' }),
  event_type: Type.String(),
  attempt: Type.Integer({ minimum: 1 }),
  status: Nullable(Type.Integer({ description: "The receiver's HTTP status; null when there was no answer" })),
  error: Nullable(Type.String({ description: 'Why it failed; null when delivered (a 2xx)' })),
  duration_ms: Type.Integer({ minimum: 0 }),
  created_at: Timestamp,
}, { description: 'One attempt of one delivery' }))

export const WebhookWithDeliveries = named('WebhookWithDeliveries', Type.Object(
  { ...webhookFields, deliveries: Type.Array(WebhookDelivery, { description: 'The latest attempts, newest first (at most 20)' }) },
  { description: 'A webhook and how its latest deliveries went' },
))

export const CreateWebhook = Type.Object({
  url: Type.String({ maxLength: 2048, description: 'https (http only where WEBHOOK_ALLOW_PRIVATE is set); its host must resolve to public addresses only' }),
  events: Type.Array(EventType, { minItems: 1, uniqueItems: true }),
  conversation_id: Type.Optional(Uuid),
}, {
  additionalProperties: false,
  examples: [{ url: 'https://bots.example.com/parley', events: ['new_message', 'reaction_added'] }],
})

export const PushSubscription = named('PushSubscription', Type.Object({
  id: Uuid,
  endpoint: Type.String(),
  created_at: Timestamp,
}, { description: "A browser's Web Push subscription" }))

// Lengths only here: what the bytes must be (a P-256 point, 16 bytes) is checked when they are decoded.
const base64url = (min: number, max: number, description: string) => Type.String({ minLength: min, maxLength: max, description: `${description}, base64url` })

export const CreatePushSubscription = Type.Object({
  endpoint: Type.String({ maxLength: 2048, description: "The push service's URL, from the browser's PushSubscription" }),
  keys: Type.Object({
    p256dh: base64url(80, 100, "The browser's P-256 public key"),
    auth: base64url(16, 30, 'Its 16-byte authentication secret'),
  }, { additionalProperties: false }),
  expirationTime: Type.Optional(Nullable(Type.Number({ description: 'Ignored: a push service that ends a subscription answers 410, and it is removed' }))),
}, {
  additionalProperties: false,
  description: "What the browser's PushSubscription.toJSON() gives",
})

export const VapidPublicKey = Type.Object({
  public_key: Type.String({ description: "The server's VAPID public key: applicationServerKey for PushManager.subscribe" }),
})
