// One POST to a URL that a user gave us: to public addresses only (address-guard.ts), no redirect followed (a
// 3xx is an answer, not a place to go: it could point anywhere, a private address included), cut off after
// `timeoutMs`, and reading at most a little of the answer, so that a slow, huge or hostile receiver costs a
// bounded time and memory.
import http from 'node:http'
import https from 'node:https'
import { isIP } from 'node:net'
import { guardedLookup, isPublicAddress } from './address-guard.ts'

export interface PostOptions {
  timeoutMs: number
  allowPrivate: boolean
}

export interface PostResult {
  /** The receiver's status; undefined when there was no answer. */
  status?: number
  /** Why it failed (null when the answer was 2xx). */
  error: string | null
  durationMs: number
}

/** What is read of an answer, at most: enough to show the owner why it failed. */
const EXCERPT_BYTES = 512

export function postOut(raw: string, body: string | Buffer, headers: Record<string, string>, opts: PostOptions): Promise<PostResult> {
  const started = performance.now()
  const done = (status: number | undefined, error: string | null): PostResult => ({ status, error, durationMs: Math.round(performance.now() - started) })
  const url = new URL(raw)
  const host = url.hostname.replace(/^\[|\]$/g, '')
  // A literal address is connected to without a lookup: it is checked here instead.
  if (isIP(host) && !opts.allowPrivate && !isPublicAddress(host)) return Promise.resolve(done(undefined, `${host} is not a public address`))
  const client = url.protocol === 'https:' ? https : http
  return new Promise((resolve) => {
    const req = client.request(url, {
      method: 'POST',
      headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) },
      lookup: guardedLookup(opts.allowPrivate),
      signal: AbortSignal.timeout(opts.timeoutMs),
    }, (res) => {
      const status = res.statusCode!
      const chunks: Buffer[] = []
      let read = 0
      res.on('data', (chunk: Buffer) => {
        if (read < EXCERPT_BYTES) chunks.push(chunk)
        read += chunk.length
        // The status is all that counts: the rest of a long answer is not waited for.
        if (read >= EXCERPT_BYTES) res.destroy()
      })
      const finish = () => {
        if (status >= 200 && status < 300) return resolve(done(status, null))
        const excerpt = Buffer.concat(chunks).subarray(0, 200).toString('utf8').replace(/\s+/g, ' ').trim()
        const where = status >= 300 && status < 400 ? ` (redirects are not followed${res.headers.location ? `: to ${String(res.headers.location).slice(0, 200)}` : ''})` : ''
        resolve(done(status, `HTTP ${status}${where}${excerpt ? `: ${excerpt}` : ''}`))
      }
      res.on('end', finish)
      res.on('close', finish)
      res.on('error', finish)
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      const timedOut = err.name === 'AbortError' || err.name === 'TimeoutError'
      resolve(done(undefined, timedOut ? `no answer within ${opts.timeoutMs} ms` : err.message))
    })
    req.end(body)
  })
}
