import type { DB } from '../database.ts'
import { toPublicUser } from '../services/users.ts'
import type { EphemeralEvent } from './events.ts'
import type { ServerFrame } from './protocol.ts'

/** What the fan-out needs of the hub: who is local in which conversation, and a way to reach a user. */
export interface LocalMembers {
  /** Conversation → the local users who are members. */
  members(conversationId: string): ReadonlySet<string> | undefined
  sendToUser(userId: string, frame: ServerFrame, text: string): void
}

/** Who blocks whom, among the pairs that concern a batch. */
class Blocks {
  private readonly pairs = new Set<string>()
  constructor(rows: { blocker_id: string; blocked_id: string }[]) {
    for (const r of rows) this.pairs.add(`${r.blocker_id}:${r.blocked_id}`)
  }

  has(blocker: string, blocked: string): boolean {
    return this.pairs.has(`${blocker}:${blocked}`)
  }
}

/**
 * What concerns the users who share a conversation with someone: their presence, and their profile
 * (`user_updated`: a new display name or avatar, a deleted account). Changes come in storms (an instance's
 * users reconnecting elsewhere all at once), so the changes of one turn of the event loop are answered
 * together: one query for the conversations of every user who changed and one for the blocks among them, then
 * the hub's own map of local members, so that the cost follows the changes, not the changes times the sockets
 * held here. Whom a user blocks gets neither their presence nor, in their profile, their presence; a block made
 * or lifted (`block_changed`) sends each of the two the other's profile as they now see it.
 */
export class UserFanout {
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
    const pairs = batch.filter((e) => e.type === 'block_changed').map((e) => [e.blocker_id as string, e.blocked_id as string])
    const changes = batch.filter((e) => e.type !== 'block_changed')
    const users = [...new Set(changes.map((e) => e.user_id as string))]
    const everyone = [...new Set([...users, ...pairs.flat()])]
    const profiles = [...new Set([...changes.filter((e) => e.type === 'user_updated').map((e) => e.user_id as string), ...pairs.flat()])]
    // A batch whose look-ups fail is dropped whole (as before blocks, when nobody could be found): better no
    // presence than a blocker's presence to the one they block.
    const found = await Promise.all([
      users.length === 0 ? [] : this.db.selectFrom('participants').select(['user_id', 'conversation_id']).where('user_id', 'in', users).execute(),
      this.db.selectFrom('blocks').select(['blocker_id', 'blocked_id'])
        .where((eb) => eb.or([eb('blocker_id', 'in', everyone), eb('blocked_id', 'in', everyone)])).execute(),
      // Read as they are now, after the change committed: the one shape of a public User is the service's.
      profiles.length === 0 ? [] : this.db.selectFrom('users').selectAll().where('id', 'in', profiles).execute(),
    ]).catch(() => undefined)
    if (!found) return
    const [rows, blockRows, profileRows] = found
    const conversationsOf = new Map<string, string[]>()
    for (const r of rows) {
      const list = conversationsOf.get(r.user_id)
      if (list) list.push(r.conversation_id)
      else conversationsOf.set(r.user_id, [r.conversation_id])
    }
    const blocks = new Blocks(blockRows)
    const profileOf = new Map(profileRows.map((u) => [u.id, u]))
    /** `user`'s profile to `recipient`, as GET /users/{id} shows it to them now. */
    const profileFor = (user: string, recipient: string): [ServerFrame, string] | undefined => {
      const row = profileOf.get(user)
      if (!row) return undefined
      const frame: ServerFrame = { type: 'user_updated', data: toPublicUser(row, { isBlocked: blocks.has(recipient, user), seesPresence: !blocks.has(user, recipient) }) }
      return [frame, JSON.stringify(frame)]
    }
    for (const e of changes) {
      const userId = e.user_id as string
      const recipients = new Set<string>()
      for (const conv of conversationsOf.get(userId) ?? []) for (const member of this.local.members(conv) ?? []) recipients.add(member)
      if (e.type === 'presence') {
        recipients.delete(userId)
        const frame: ServerFrame = { type: 'presence', data: { user_id: userId, is_online: e.is_online as boolean, last_seen: e.last_seen as string | null } }
        const text = JSON.stringify(frame)
        for (const r of recipients) if (!blocks.has(userId, r)) this.local.sendToUser(r, frame, text)
        continue
      }
      // The user's own other devices hear of it too.
      recipients.add(userId)
      // At most three versions: blocked by the recipient, blocking the recipient, neither.
      const texts = new Map<string, [ServerFrame, string] | undefined>()
      for (const r of recipients) {
        const key = `${blocks.has(r, userId)}:${blocks.has(userId, r)}`
        if (!texts.has(key)) texts.set(key, profileFor(userId, r))
        const version = texts.get(key)
        if (version) this.local.sendToUser(r, version[0], version[1])
      }
    }
    // Each side of a block made or lifted sees the other anew: the blocked the blocker's presence (or none), the
    // blocker's devices `is_blocked`. They need share no conversation: either may have the other's profile open.
    for (const [blocker, blocked] of pairs) {
      for (const [user, recipient] of [[blocker, blocked], [blocked, blocker]]) {
        const version = profileFor(user, recipient)
        if (version) this.local.sendToUser(recipient, version[0], version[1])
      }
    }
  }
}
