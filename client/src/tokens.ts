// The access token and its refresh. Refresh tokens rotate and a spent one, used again, ends the session
// (src/services/auth.ts), so every refresh goes through one promise at a time.
import { Emitter } from './emitter.ts'
import { ParleyError, type Tokens } from './types.ts'

export interface TokenEvents {
  /** A new pair: persist `refresh_token` here if the app keeps sessions across reloads. */
  tokens: Tokens
  /** The refresh token was refused: the session is over, sign in again. */
  signed_out: ParleyError
}

/** When the access token expires, from its `exp` claim (ms since the epoch); undefined if it has none. */
export function expiryOf(accessToken: string): number | undefined {
  try {
    const payload = accessToken.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    const exp = JSON.parse(atob(payload)).exp
    return typeof exp === 'number' ? exp * 1000 : undefined
  } catch {
    return undefined
  }
}

export class TokenManager extends Emitter<TokenEvents> {
  private current: Tokens | undefined
  private inflight: Promise<Tokens> | undefined
  private timer: ReturnType<typeof setTimeout> | undefined

  /** `exchange` trades a refresh token for a new pair (POST /auth/refresh). */
  constructor(private readonly exchange: (refreshToken: string) => Promise<Tokens>) {
    super()
  }

  get tokens(): Tokens | undefined {
    return this.current
  }

  /** Takes a pair (from a sign-in, a refresh, or storage) and plans the next refresh before it expires. */
  set(tokens: Tokens): void {
    const expires_at = tokens.expires_at ?? expiryOf(tokens.access_token) ?? Date.now() + 60_000
    this.current = { ...tokens, expires_at }
    this.schedule(expires_at)
    this.emit('tokens', this.current)
  }

  /** An access token good for a while yet: the current one, or a fresh one if it has (nearly) expired. */
  async access(): Promise<string> {
    const t = this.current
    if (!t) throw new ParleyError('UNAUTHORIZED', 'not signed in', 401)
    if (t.expires_at! - Date.now() > 1000) return t.access_token
    return (await this.refresh()).access_token
  }

  /** Refreshes now (one exchange at a time; concurrent callers share it). */
  refresh(): Promise<Tokens> {
    this.inflight ??= this.exchangeOnce().finally(() => (this.inflight = undefined))
    return this.inflight
  }

  private async exchangeOnce(): Promise<Tokens> {
    const t = this.current
    if (!t) throw new ParleyError('UNAUTHORIZED', 'not signed in', 401)
    try {
      const next = await this.exchange(t.refresh_token)
      this.set(next)
      return this.current!
    } catch (err) {
      if (err instanceof ParleyError && err.status === 401) {
        this.clear()
        this.emit('signed_out', err)
      } else {
        this.schedule(Date.now() + 3000) // the server was unreachable: try again soon, while the token may still hold
      }
      throw err
    }
  }

  // A third of the token's life before it ends, at most a minute: early enough for a slow network, and for a
  // socket to receive the `auth` frame before the server closes it at expiry.
  private schedule(expiresAt: number): void {
    clearTimeout(this.timer)
    const left = expiresAt - Date.now()
    const margin = Math.min(60_000, left / 3)
    this.timer = setTimeout(() => void this.refresh().catch(() => {}), Math.max(0, left - margin))
  }

  clear(): void {
    clearTimeout(this.timer)
    this.current = undefined
  }
}
