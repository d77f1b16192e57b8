import type { DB } from '../database.ts'
import { AppError, badRequest } from '../errors.ts'
import { urlRefusal } from '../outgoing/address-guard.ts'

export interface PushOptions {
  /** The server's VAPID public key; undefined when Web Push is not configured. */
  publicKey: string | undefined
  allowPrivate: boolean
}

const notConfigured = () => new AppError(404, 'PUSH_NOT_CONFIGURED', 'Web Push is not configured on this server')

/**
 * The caller's browsers subscribed to Web Push. An endpoint is one browser's: subscribing it again (after a new
 * sign-in, perhaps as someone else) replaces its keys and owner. Push services are reached like webhooks, so an
 * endpoint must pass the same address check.
 */
export class PushSubscriptionsService {
  constructor(private readonly db: DB, private readonly opts: PushOptions) {}

  publicKey(): { public_key: string } {
    if (!this.opts.publicKey) throw notConfigured()
    return { public_key: this.opts.publicKey }
  }

  async subscribe(userId: string, body: { endpoint: string; keys: { p256dh: string; auth: string } }) {
    if (!this.opts.publicKey) throw notConfigured()
    const wrong = keyProblems(body.keys)
    if (wrong.length) throw badRequest('Invalid push subscription keys', 'VALIDATION_ERROR', wrong)
    const refused = await urlRefusal(body.endpoint, this.opts.allowPrivate)
    if (refused) throw badRequest(`The push endpoint is not allowed: ${refused}`, 'URL_NOT_ALLOWED')
    const row = await this.db.insertInto('push_subscriptions')
      .values({ user_id: userId, endpoint: body.endpoint, p256dh: body.keys.p256dh, auth: body.keys.auth })
      .onConflict((oc) => oc.column('endpoint').doUpdateSet({ user_id: userId, p256dh: body.keys.p256dh, auth: body.keys.auth }))
      .returning(['id', 'endpoint', 'created_at']).executeTakeFirstOrThrow()
    return { ...row, created_at: row.created_at.toISOString() }
  }

  async unsubscribe(userId: string, id: string): Promise<void> {
    const { numDeletedRows } = await this.db.deleteFrom('push_subscriptions').where('id', '=', id).where('user_id', '=', userId).executeTakeFirst()
    if (numDeletedRows === 0n) throw new AppError(404, 'PUSH_SUBSCRIPTION_NOT_FOUND', 'Push subscription not found')
  }
}

const BASE64URL = /^[A-Za-z0-9_-]+={0,2}$/

/** What the browser's keys must be to encrypt for it (RFC 8291): an uncompressed P-256 point, a 16-byte secret. */
function keyProblems(keys: { p256dh: string; auth: string }): string[] {
  const problems: string[] = []
  const p256dh = BASE64URL.test(keys.p256dh) ? Buffer.from(keys.p256dh, 'base64url') : undefined
  if (!p256dh || p256dh.length !== 65 || p256dh[0] !== 4) problems.push('/keys/p256dh must be an uncompressed P-256 public key (65 bytes), base64url')
  const auth = BASE64URL.test(keys.auth) ? Buffer.from(keys.auth, 'base64url') : undefined
  if (!auth || auth.length !== 16) problems.push('/keys/auth must be 16 bytes, base64url')
  return problems
}
