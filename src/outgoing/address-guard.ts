// Which addresses a URL that a user gave us (a webhook, a push endpoint) may reach: the public internet only,
// unless the operator allows private ones (WEBHOOK_ALLOW_PRIVATE: a bot on the same network, or the tests).
// The check is made on the addresses a request actually connects to (the `lookup` of the socket), so a DNS
// answer that changes between the check at registration and the delivery (DNS rebinding) cannot steer it inside.
import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns'
import { isIP } from 'node:net'
import { Address4, Address6 } from 'ip-address'

const PRIVATE_V4 = [
  '0.0.0.0/8', '10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.0.0.0/24',
  '192.0.2.0/24', '192.168.0.0/16', '198.18.0.0/15', '198.51.100.0/24', '203.0.113.0/24', '224.0.0.0/4', '240.0.0.0/4',
].map((cidr) => new Address4(cidr))
const PRIVATE_V6 = ['::/128', '::1/128', 'fe80::/10', 'fc00::/7', 'ff00::/8', '2001:db8::/32', '100::/64'].map((cidr) => new Address6(cidr))
const MAPPED_V4 = new Address6('::ffff:0:0/96')
const NAT64 = new Address6('64:ff9b::/96')

/** Whether an IP address is on the public internet (not private, loopback, link-local, multicast, reserved). */
export function isPublicAddress(ip: string): boolean {
  if (isIP(ip) === 4) {
    const a = new Address4(ip)
    return !PRIVATE_V4.some((net) => a.isInSubnet(net))
  }
  if (isIP(ip) !== 6) return false
  const a = new Address6(ip)
  // An IPv4 address inside IPv6 (mapped, or NAT64) is judged as that IPv4 address.
  if (a.isInSubnet(MAPPED_V4) || a.isInSubnet(NAT64)) return isPublicAddress(a.to4().correctForm())
  return !PRIVATE_V6.some((net) => a.isInSubnet(net))
}

export class AddressNotAllowed extends Error {
  code = 'ADDRESS_NOT_ALLOWED'
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void

/** A `lookup` for http.request that resolves as usual and refuses any answer with a non-public address. */
export function guardedLookup(allowPrivate: boolean) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '')
      const list = addresses as LookupAddress[]
      const refused = allowPrivate ? undefined : list.find((a) => !isPublicAddress(a.address))
      if (refused) return callback(new AddressNotAllowed(`${hostname} resolves to ${refused.address}, which is not a public address`), '')
      if (options.all) return callback(null, list)
      callback(null, list[0].address, list[0].family)
    })
  }
}

/**
 * Why a URL may not be a delivery target, or undefined when it may: https only (http too when private addresses
 * are allowed, for a local receiver), no credentials in it, and every address its host resolves to public.
 */
export async function urlRefusal(raw: string, allowPrivate: boolean): Promise<string | undefined> {
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    return 'not a URL'
  }
  if (url.protocol !== 'https:' && !(allowPrivate && url.protocol === 'http:')) return 'the URL must be https'
  if (url.username || url.password) return 'the URL must not carry credentials'
  const host = url.hostname.replace(/^\[|\]$/g, '')
  if (isIP(host)) return allowPrivate || isPublicAddress(host) ? undefined : `${host} is not a public address`
  return new Promise((resolve) => {
    guardedLookup(allowPrivate)(host, { all: true }, (err) => {
      if (!err) return resolve(undefined)
      resolve(err instanceof AddressNotAllowed ? err.message : `${host} does not resolve`)
    })
  })
}
