// Reconnect and retry delays: exponential with full jitter, so that clients dropped together by one failed
// instance do not come back together (AWS Architecture Blog, "Exponential Backoff And Jitter").
export interface BackoffOptions {
  /** The first delay's ceiling, ms (default 250). */
  initialMs?: number
  /** The largest ceiling, ms (default 10 000). */
  maxMs?: number
}

export class Backoff {
  private attempt = 0
  private readonly initialMs: number
  private readonly maxMs: number

  constructor(opts: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.initialMs = opts.initialMs ?? 250
    this.maxMs = opts.maxMs ?? 10_000
  }

  /** The next delay: uniform in [0, min(max, initial × 2^attempt)]. */
  next(): number {
    const ceiling = Math.min(this.maxMs, this.initialMs * 2 ** this.attempt)
    this.attempt = Math.min(this.attempt + 1, 30)
    return Math.round(this.random() * ceiling)
  }

  reset(): void {
    this.attempt = 0
  }
}
