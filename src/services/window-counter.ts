/** A key's count in its current window, and the time until that window ends. */
export interface WindowCount {
  count: number
  ttlMs: number
}

interface Window {
  count: number
  startedAt: number
}

/**
 * Fixed windows counted in memory, per key: a key's first hit opens its window, `windowMs` long; every hit in it
 * adds one, refused or not (a client that keeps knocking stays refused until the window ends).
 *
 * Synchronous, because it runs on every request: a hit is a Map lookup, a move to the end and an addition.
 * At most `capacity` keys are kept, the least recently hit dropped first; a dropped key starts again from zero,
 * so the capacity must be large enough that flooding it with new keys to reset someone's count is not cheap.
 * (@fastify/rate-limit's LocalStore, which this replaces, behaves the same: a fixed window in an LRU.)
 */
export class WindowCounter {
  // A Map iterates in insertion order: deleting and re-setting a key on each hit keeps the least recently hit first.
  private readonly windows = new Map<string, Window>()

  constructor(
    private readonly windowMs: number,
    private readonly capacity: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Counts one hit of `key`. */
  hit(key: string): WindowCount {
    const now = this.now()
    let window = this.windows.get(key)
    if (window === undefined) {
      if (this.windows.size >= this.capacity) this.windows.delete(this.windows.keys().next().value as string)
      window = { count: 0, startedAt: now }
    } else {
      this.windows.delete(key)
      if (window.startedAt + this.windowMs <= now) {
        window.count = 0
        window.startedAt = now
      }
    }
    window.count++
    this.windows.set(key, window)
    return { count: window.count, ttlMs: window.startedAt + this.windowMs - now }
  }

  /** How many keys are kept now. */
  get size(): number {
    return this.windows.size
  }
}
