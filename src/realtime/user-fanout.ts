import type { DB } from '../database.ts'
import type { EphemeralEvent } from './events.ts'
import type { Frame } from './protocol.ts'

/** What the fan-out needs of the hub: who is local in which conversation, and a way to reach a user. */
export interface LocalMembers {
  /** Conversation → the local users who are members. */
  members(conversationId: string): ReadonlySet<string> | undefined
  sendToUser(userId: string, frame: Frame, text: string): void
}

/**
 * A presence change goes to the local users who share a conversation with that user. Changes come in storms
 * (an instance's users reconnecting elsewhere all at once), so the changes of one turn of the event loop are
 * answered together: one query for the conversations of every user who changed, then the hub's own map of
 * local members, so that the cost follows the changes, not the changes times the sockets held here.
 */
export class PresenceFanout {
  private batch: EphemeralEvent[] = []
  private scheduled = false
  /** Batches in flight, so that a later batch is delivered after an earlier one. */
  private chain: Promise<void> = Promise.resolve()

  constructor(
    private readonly db: DB,
    private readonly local: LocalMembers,
  ) {}

  push(e: EphemeralEvent): void {
    this.batch.push(e)
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      const batch = this.batch
      this.batch = []
      this.scheduled = false
      this.chain = this.chain.then(() => this.deliver(batch))
    })
  }

  /** Resolves once every change pushed so far has gone out. */
  async delivered(): Promise<void> {
    // Immediates run in order: by the time this one runs, the pending batch is on the chain.
    if (this.scheduled) await new Promise((resolve) => setImmediate(resolve))
    await this.chain
  }

  private async deliver(batch: EphemeralEvent[]): Promise<void> {
    const users = [...new Set(batch.map((e) => e.user_id as string))]
    const rows = await this.db
      .selectFrom('participants')
      .select(['user_id', 'conversation_id'])
      .where('user_id', 'in', users)
      .execute()
      .catch(() => [])
    const conversationsOf = new Map<string, string[]>()
    for (const r of rows) {
      const list = conversationsOf.get(r.user_id)
      if (list) list.push(r.conversation_id)
      else conversationsOf.set(r.user_id, [r.conversation_id])
    }
    for (const e of batch) {
      const userId = e.user_id as string
      const recipients = new Set<string>()
      for (const conv of conversationsOf.get(userId) ?? []) for (const member of this.local.members(conv) ?? []) recipients.add(member)
      recipients.delete(userId)
      if (recipients.size === 0) continue
      const frame: Frame = { type: 'presence', data: { user_id: userId, is_online: e.is_online, last_seen: e.last_seen } }
      const text = JSON.stringify(frame)
      for (const r of recipients) this.local.sendToUser(r, frame, text)
    }
  }
}
