import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'
import { unauthorized } from '../errors.ts'
import { fileUrl } from './files.ts'

/** What a signed file URL carries in its query: the user, their session, the expiry (epoch s), the MAC. */
export interface Signature {
  u: string
  s: string
  expires: number
  sig: string
}

/** Who a verified signature stands for. */
export interface Signer {
  userId: string
  sessionId: string
  expires: number
}

/**
 * Short-lived links to one file for one user, for where no header can be sent (<img src>, <video src>, a
 * download): an access token in a URL ends up in logs and browser history, and would open everything. A
 * signature opens one file, for one user and session, for minutes; on every request the server checks again
 * that the user may read the file and that the session has not ended.
 */
export class FileUrls {
  private readonly key: Buffer

  constructor(
    secret: string,
    private readonly ttl: number,
  ) {
    // A key of its own, so that a signature can never pass for a token signed with the same secret, or back.
    this.key = Buffer.from(hkdfSync('sha256', secret, 'parley', 'file urls v1', 32))
  }

  /**
   * Expiry is on a grid of TTL seconds: every ask within one step gets the same URL, so the browser's cache
   * keeps serving an image that is shown again; a URL lives between one and two TTLs.
   */
  sign(fileId: string, who: Omit<Signer, 'expires'>, now = Date.now()): { url: string; expires_at: string } {
    const expires = (Math.floor(now / 1000 / this.ttl) + 2) * this.ttl
    const query = new URLSearchParams({ expires: String(expires), u: who.userId, s: who.sessionId, sig: this.mac(fileId, who.userId, who.sessionId, expires) })
    return { url: `${fileUrl(fileId)}?${query}`, expires_at: new Date(expires * 1000).toISOString() }
  }

  /** Who a signature stands for; 401 when it is not ours for this file, or has expired. */
  verify(fileId: string, { u, s, expires, sig }: Partial<Signature>, now = Date.now()): Signer {
    if (!u || !s || expires === undefined || !sig) throw unauthorized('This file link is incomplete', 'FILE_URL_INVALID')
    const expected = Buffer.from(this.mac(fileId, u, s, expires))
    const given = Buffer.from(sig)
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw unauthorized('This file link is not valid', 'FILE_URL_INVALID')
    if (expires * 1000 <= now) throw unauthorized('This file link has expired; ask for a new one', 'FILE_URL_EXPIRED')
    return { userId: u, sessionId: s, expires }
  }

  /** Seconds until a verified signature expires: how long a browser may keep what it fetched. */
  secondsLeft(expires: number, now = Date.now()): number {
    return Math.max(0, Math.floor(expires - now / 1000))
  }

  private mac(fileId: string, userId: string, sessionId: string, expires: number): string {
    return createHmac('sha256', this.key).update(`${fileId}\n${userId}\n${sessionId}\n${expires}`).digest('base64url')
  }
}
