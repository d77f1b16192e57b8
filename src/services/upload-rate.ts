// Users whose window is kept at most; past it, ended windows are dropped first, then the oldest.
const MAX_KEYS = 50_000

/**
 * Uploads a user may start per window: a fixed window, counted in memory on this instance, like the other
 * rate limits (behind N instances a user gets up to N times it). Every attempt counts, before a byte is read.
 */
export class UploadRate {
  private readonly windows = new Map<string, { count: number; endsAt: number }>()

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
  ) {}

  /** Counts one upload: 0 when it may go ahead, else the seconds until the user's window ends. */
  take(userId: string, now = Date.now()): number {
    let window = this.windows.get(userId)
    if (!window || window.endsAt <= now) {
      this.windows.delete(userId)
      if (this.windows.size >= MAX_KEYS) this.prune(now)
      window = { count: 0, endsAt: now + this.windowMs }
      this.windows.set(userId, window)
    }
    if (window.count >= this.max) return Math.max(1, Math.ceil((window.endsAt - now) / 1000))
    window.count++
    return 0
  }

  private prune(now: number): void {
    for (const [key, w] of this.windows) if (w.endsAt <= now) this.windows.delete(key)
    // Insertion order is age order: if every window is live, the oldest go.
    for (const key of this.windows.keys()) {
      if (this.windows.size < MAX_KEYS) break
      this.windows.delete(key)
    }
  }
}
