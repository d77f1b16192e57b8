// A delivery's signature (docs/API.md): `Parley-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`,
// as Stripe signs its webhooks: the time inside the signed text lets a receiver refuse a replayed old delivery.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'

/** A new webhook secret, shown to its owner once. */
export const newSecret = () => `whsec_${randomBytes(32).toString('base64url')}`

export function sign(secret: string, body: string, nowMs = Date.now()): string {
  const t = Math.floor(nowMs / 1000)
  return `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`
}

/** What a receiver checks (the README shows it as a receiver would write it): the HMAC, and a recent time. */
export function verify(secret: string, body: string, header: string, toleranceS = 300, nowMs = Date.now()): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=', 2) as [string, string]))
  const t = Number(parts.t)
  if (!Number.isInteger(t) || Math.abs(nowMs / 1000 - t) > toleranceS || !parts.v1) return false
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest()
  const given = Buffer.from(parts.v1, 'hex')
  return given.length === expected.length && timingSafeEqual(given, expected)
}
