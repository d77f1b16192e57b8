// The `webhook_delivery` job: one event to one webhook, signed, as its owner may see the event now. A failure
// is thrown, and graphile-worker tries again with its backoff (e^attempt seconds); after WEBHOOK_MAX_ATTEMPTS
// the webhook is disabled with the reason, which its owner reads on GET /webhooks/{id}.
import type { JobHelpers } from 'graphile-worker'
import { sql } from 'kysely'
import type { DB } from '../database.ts'
import { servedEvent } from '../realtime/served-event.ts'
import type { ConversationsService } from '../services/conversations.ts'
import { watchRight } from '../services/webhooks.ts'
import { postOut, type PostOptions } from './post.ts'
import { sign } from './signature.ts'

export interface WebhookDeliveryOptions extends PostOptions {
  maxAttempts: number
}

interface Payload {
  webhook_id: string
  conversation_id: string
  seq: number
}

/** Attempts kept per webhook for its owner to read. */
const KEPT = 50

export function webhookDelivery(db: DB, conversations: ConversationsService, opts: WebhookDeliveryOptions) {
  return async (raw: unknown, helpers: JobHelpers): Promise<void> => {
    const { webhook_id, conversation_id, seq } = raw as Payload
    const hook = await db.selectFrom('webhooks').selectAll().where('id', '=', webhook_id).where('disabled_at', 'is', null).executeTakeFirst()
    if (!hook) return // deleted or disabled since
    const lost = await lostRight(db, hook.owner_id, hook.conversation_id)
    if (lost) return disable(db, webhook_id, lost)
    const event = await servedEvent(db, conversations, hook.owner_id, conversation_id, seq)
    if (!event) return // not the owner's to see (before they joined or cleared, after they left)
    const eventId = `${conversation_id}:${seq}`
    const result = await postOut(hook.url, event.text, {
      'content-type': 'application/json',
      'user-agent': 'Parley-Webhooks/1',
      'parley-event-id': eventId,
      'parley-signature': sign(hook.secret, event.text),
    }, opts)
    const attempt = helpers.job.attempts
    await record(db, { webhook_id, event_id: eventId, event_type: event.type, attempt, status: result.status ?? null, error: result.error, duration_ms: result.durationMs })
    if (result.error === null) return
    if (attempt >= opts.maxAttempts) {
      return disable(db, webhook_id, `${attempt} attempt${attempt === 1 ? '' : 's'} to deliver ${eventId} failed; the last: ${result.error}`)
    }
    throw new Error(`webhook ${webhook_id}: ${result.error}`)
  }
}

/** Why the owner may no longer have this webhook (the rule of registration, asked again), if they may not. */
async function lostRight(db: DB, ownerId: string, conversationId: string | null): Promise<string | undefined> {
  if (!conversationId) return undefined
  const right = await watchRight(db, ownerId, conversationId)
  if (right === 'not a member') return 'its owner is no longer a member of the conversation'
  if (right === 'not an admin') return 'its owner is no longer an admin of the group'
  return undefined
}

async function disable(db: DB, id: string, reason: string): Promise<void> {
  await db.updateTable('webhooks').set({ disabled_at: sql`now()`, disabled_reason: reason.slice(0, 1000) }).where('id', '=', id).where('disabled_at', 'is', null).execute()
}

async function record(db: DB, row: { webhook_id: string; event_id: string; event_type: string; attempt: number; status: number | null; error: string | null; duration_ms: number }) {
  await db.insertInto('webhook_deliveries').values({ ...row, error: row.error?.slice(0, 1000) ?? null }).execute()
  // The oldest beyond the kept ones go: the log of a busy webhook stays small.
  await sql`DELETE FROM webhook_deliveries WHERE webhook_id = ${row.webhook_id} AND id < (
    SELECT id FROM webhook_deliveries WHERE webhook_id = ${row.webhook_id} ORDER BY id DESC OFFSET ${KEPT - 1} LIMIT 1)`.execute(db)
}
