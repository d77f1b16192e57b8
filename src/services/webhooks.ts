import type { Selectable } from 'kysely'
import type { WebhooksTable } from '../../db/types.ts'
import type { DB } from '../database.ts'
import { badRequest, conflict, forbidden, notFound } from '../errors.ts'
import { urlRefusal } from '../outgoing/address-guard.ts'
import { newSecret } from '../outgoing/signature.ts'
import type { Webhook } from '../schemas/outgoing.ts'

export interface WebhooksOptions {
  allowPrivate: boolean
  perUser: number
}

const toWebhook = (w: Selectable<WebhooksTable>): Webhook => ({
  id: w.id,
  url: w.url,
  events: w.events as Webhook['events'],
  conversation_id: w.conversation_id,
  created_at: w.created_at.toISOString(),
  disabled_at: w.disabled_at?.toISOString() ?? null,
  disabled_reason: w.disabled_reason,
})

/**
 * Whether a user may have a webhook on a conversation: a conversation's events go to its admins' webhooks (a
 * group) or its members' (a direct conversation). Asked at registration and again before each delivery.
 */
export async function watchRight(db: DB, userId: string, conversationId: string): Promise<'ok' | 'not a member' | 'not an admin'> {
  const row = await db.selectFrom('participants').innerJoin('conversations', 'conversations.id', 'participants.conversation_id')
    .select(['participants.role', 'conversations.is_group'])
    .where('participants.conversation_id', '=', conversationId).where('participants.user_id', '=', userId)
    .executeTakeFirst()
  if (!row) return 'not a member'
  return row.is_group && row.role !== 'admin' ? 'not an admin' : 'ok'
}

/** The latest attempts a webhook shows its owner. */
const SHOWN = 20

/**
 * A user's webhooks. With a conversation: its events, registered by a group's admin or a direct conversation's
 * member. Without: the events of every direct conversation of the account (a bot's). A stranger's conversation is
 * 404, as everywhere; a webhook is seen and deleted by its owner only.
 */
export class WebhooksService {
  constructor(private readonly db: DB, private readonly opts: WebhooksOptions) {}

  async create(userId: string, body: { url: string; events: string[]; conversation_id?: string }): Promise<Webhook & { secret: string }> {
    if (body.conversation_id) await this.mayWatch(userId, body.conversation_id)
    const refused = await urlRefusal(body.url, this.opts.allowPrivate)
    if (refused) throw badRequest(`The webhook URL is not allowed: ${refused}`, 'URL_NOT_ALLOWED')
    const secret = newSecret()
    const row = await this.db.transaction().execute(async (trx) => {
      // Counted under the owner's row lock: two creations at once cannot both pass the limit.
      await trx.selectFrom('users').select('id').where('id', '=', userId).forUpdate().execute()
      const { count } = await trx.selectFrom('webhooks').select((eb) => eb.fn.countAll<string>().as('count')).where('owner_id', '=', userId).executeTakeFirstOrThrow()
      if (Number(count) >= this.opts.perUser) throw conflict(`An account has at most ${this.opts.perUser} webhooks`, 'TOO_MANY_WEBHOOKS')
      return trx.insertInto('webhooks')
        .values({ owner_id: userId, conversation_id: body.conversation_id ?? null, url: body.url, events: body.events, secret })
        .returningAll().executeTakeFirstOrThrow()
    })
    return { ...toWebhook(row), secret }
  }

  async list(userId: string): Promise<Webhook[]> {
    const rows = await this.db.selectFrom('webhooks').selectAll().where('owner_id', '=', userId).orderBy('created_at').orderBy('id').execute()
    return rows.map(toWebhook)
  }

  async get(userId: string, id: string) {
    const row = await this.db.selectFrom('webhooks').selectAll().where('id', '=', id).where('owner_id', '=', userId).executeTakeFirst()
    if (!row) throw notFound('webhook')
    const deliveries = await this.db.selectFrom('webhook_deliveries')
      .select(['event_id', 'event_type', 'attempt', 'status', 'error', 'duration_ms', 'created_at'])
      .where('webhook_id', '=', id).orderBy('id', 'desc').limit(SHOWN).execute()
    return { ...toWebhook(row), deliveries: deliveries.map((d) => ({ ...d, created_at: d.created_at.toISOString() })) }
  }

  async remove(userId: string, id: string): Promise<void> {
    const { numDeletedRows } = await this.db.deleteFrom('webhooks').where('id', '=', id).where('owner_id', '=', userId).executeTakeFirst()
    if (numDeletedRows === 0n) throw notFound('webhook')
  }

  private async mayWatch(userId: string, conversationId: string): Promise<void> {
    const right = await watchRight(this.db, userId, conversationId)
    if (right === 'not a member') throw notFound('conversation')
    if (right === 'not an admin') throw forbidden("Only a group's admins can add a webhook to it", 'NOT_ADMIN')
  }
}
