import { randomUUID } from 'node:crypto'
import { sql } from 'kysely'
import type { DB } from '../database.ts'

export interface PresenceOptions {
  heartbeatMs: number
  /** An instance silent for longer than this is taken for dead and its users go offline. */
  ttlMs: number
}

/**
 * This instance's share of presence (triggers/presence.sql does the counting): a row per user it holds
 * sockets of, and a heartbeat. Every beat also reaps instances that stopped beating, and counts those alive.
 */
export class Presence {
  readonly instanceId = randomUUID()
  /**
   * Instances beating within the TTL, this one included, as of the last beat: the global rate limit is shared
   * out among them (plugins/rate-limit.ts). A new instance is seen within a heartbeat, a dead one within the TTL.
   */
  liveInstances = 1
  private timer: NodeJS.Timeout | undefined
  /** Per-user chains: a quick connect-then-disconnect must reach the database in that order. */
  private readonly chains = new Map<string, Promise<void>>()

  constructor(
    private readonly db: DB,
    private readonly opts: PresenceOptions,
  ) {}

  async start(): Promise<void> {
    await this.db.insertInto('instances').values({ id: this.instanceId }).execute()
    await this.count()
    this.timer = setInterval(() => void this.beat().catch(() => {}), this.opts.heartbeatMs)
    this.timer.unref()
  }

  async beat(): Promise<void> {
    await this.db.updateTable('instances').set({ heartbeat_at: sql`now()` }).where('id', '=', this.instanceId).execute()
    await this.count()
  }

  /** Reaps the dead and counts the living, in one statement (the count does not depend on what the reaping saw). */
  private async count(): Promise<void> {
    const ttl = `${this.opts.ttlMs} milliseconds`
    const { rows } = await sql<{ live: number }>`
      SELECT parley_reap_instances(${ttl}::interval) AS reaped,
             (SELECT count(*) FROM instances WHERE id <> ${this.instanceId} AND heartbeat_at >= now() - ${ttl}::interval) + 1 AS live
    `.execute(this.db)
    this.liveInstances = Number(rows[0].live)
  }

  here(userId: string, here: boolean): Promise<void> {
    const next = (this.chains.get(userId) ?? Promise.resolve())
      .then(() => sql`SELECT parley_set_presence(${this.instanceId}, ${userId}, ${here})`.execute(this.db))
      .then(() => {}, () => {})
    this.chains.set(userId, next)
    next.then(() => {
      if (this.chains.get(userId) === next) this.chains.delete(userId)
    })
    return next
  }

  /** On shutdown: this instance's users go offline now rather than after the TTL. */
  async stop(): Promise<void> {
    clearInterval(this.timer)
    await Promise.all(this.chains.values())
    await this.db.updateTable('instances').set({ heartbeat_at: sql`'-infinity'` }).where('id', '=', this.instanceId).execute()
    await sql`SELECT parley_reap_instances(${`${this.opts.ttlMs} milliseconds`}::interval)`.execute(this.db)
  }
}
