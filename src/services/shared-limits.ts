import { createHmac, hkdfSync } from 'node:crypto'
import type pg from 'pg'
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible'

/** What one counted attempt may do. */
export interface Verdict {
  allowed: boolean
  limit: number
  remaining: number
  /** Until the key's window ends (0 when unknown). */
  retryAfterMs: number
}

/** Counts one attempt of a key against a limit that every instance shares. */
export type SharedLimit = (key: string) => Promise<Verdict>

/** Counts one attempt of a key and says how many it has made in its window, without judging them. */
export type SharedCounter = (key: string) => Promise<{ count: number; ttlMs: number }>

// rate_limits is made by migration 0011 (unlogged: a counter is not worth a WAL flush), never at run time.
const TABLE = 'rate_limits'

/**
 * Rate limits counted in PostgreSQL, so that one count holds across every instance: each attempt is one
 * upsert (rate-limiter-flexible's, a prepared statement) of its key's row, a fixed window. A key over its limit
 * is also remembered here until its window ends, so that a flood of refused attempts costs no round trip.
 *
 * Keys are stored as an HMAC: they hold client addresses and whatever was typed as a username (sometimes a
 * password), and the table needs neither, only to tell keys apart.
 */
export class SharedLimits {
  private readonly keyMac: Buffer
  private sweeping = false

  constructor(
    private readonly pool: pg.Pool,
    secret: string,
  ) {
    // Its own key, derived from the JWT secret (which every instance shares), as file URLs' is.
    this.keyMac = Buffer.from(hkdfSync('sha256', secret, 'parley', 'rate-limit keys v1', 32))
  }

  private mac(key: string): string {
    return createHmac('sha256', this.keyMac).update(key).digest('base64url')
  }

  private store(name: string, points: number, windowMs: number, blockInMemory: boolean): RateLimiterPostgres {
    const limiter = new RateLimiterPostgres({
      storeClient: this.pool,
      storeType: 'pool',
      tableName: TABLE,
      tableCreated: true,
      keyPrefix: name,
      points,
      duration: windowMs / 1000,
      ...(blockInMemory && { inMemoryBlockOnConsumed: points + 1 }),
      // The library deletes rows whose window ended an hour ago every 5 minutes; once per instance is enough.
      clearExpiredByTimeout: !this.sweeping,
    })
    this.sweeping = true
    return limiter
  }

  /** `max` attempts per key per `windowMs`, for every instance together. */
  limit(name: string, max: number, windowMs: number): SharedLimit {
    const limiter = this.store(name, max, windowMs, true)
    return async (key) => {
      try {
        const res = await limiter.consume(this.mac(key))
        return { allowed: true, limit: max, remaining: res.remainingPoints, retryAfterMs: res.msBeforeNext }
      } catch (res) {
        if (!(res instanceof RateLimiterRes)) throw res
        return { allowed: false, limit: max, remaining: 0, retryAfterMs: res.msBeforeNext }
      }
    }
  }

  /** A bare count per key per `windowMs`, for a caller that judges it itself (the global limit, RATE_LIMIT_STORE=postgres). */
  counter(name: string, windowMs: number): SharedCounter {
    const limiter = this.store(name, Number.MAX_SAFE_INTEGER, windowMs, false)
    return async (key) => {
      const res = await limiter.penalty(this.mac(key))
      return { count: res.consumedPoints, ttlMs: res.msBeforeNext }
    }
  }
}
