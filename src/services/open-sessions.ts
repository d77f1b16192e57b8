/**
 * Sessions known to be open, so that a request need not ask the database whether its session still is. Trusted
 * only while this instance hears every session end: the LISTEN connection delivers `session_ended` and
 * `account_deleted` to every instance, and while it is down (when notifications are missed) nothing is trusted
 * and everything is asked again. An entry also expires after `maxAgeMs`, a bound on any staleness.
 */
export class OpenSessions {
  private readonly open = new Map<string, { userId: string; until: number }>()
  private listening = false
  /** Moves on every forget: a check that began before one may not record its answer. */
  private epoch = 0

  constructor(private readonly opts: { max: number; maxAgeMs: number }) {}

  /** Whether this session of this user is known open. */
  has(sessionId: string, userId: string): boolean {
    const entry = this.open.get(sessionId)
    if (!entry || entry.userId !== userId) return false
    if (entry.until > Date.now()) return true
    this.open.delete(sessionId)
    return false
  }

  /** A mark to take before asking the database, for `remember`. */
  get mark(): number {
    return this.epoch
  }

  /** Records that the database said this session is open, unless something was forgotten since `mark`. */
  remember(sessionId: string, userId: string, mark: number): void {
    if (!this.listening || mark !== this.epoch) return
    if (this.open.size >= this.opts.max) this.open.delete(this.open.keys().next().value!)
    this.open.set(sessionId, { userId, until: Date.now() + this.opts.maxAgeMs })
  }

  forgetSessions(sessionIds: string[]): void {
    this.epoch++
    for (const id of sessionIds) this.open.delete(id)
  }

  forgetUser(userId: string): void {
    this.epoch++
    for (const [id, entry] of this.open) if (entry.userId === userId) this.open.delete(id)
  }

  /** The listener is up (it hears every end) or down (it may miss some: forget all, trust nothing). */
  setListening(up: boolean): void {
    this.epoch++
    this.listening = up
    if (!up) this.open.clear()
  }
}
