// A local HTTP receiver for outgoing deliveries (webhooks, push endpoints), as a bot or a push service would run:
// it records every request, and answers by path — /ok (200), /fail (500), /gone (410), /slow (never), /redirect
// (302 to /ok/redirected on itself), /huge (500 with 20 MB). Closed when the test ends.
import { once } from 'node:events'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'

export interface Received {
  path: string
  headers: http.IncomingHttpHeaders
  body: Buffer
}

export async function receiver(t: Test) {
  const received: Received[] = []
  const waiters: Array<() => void> = []
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ path: req.url!, headers: req.headers, body: Buffer.concat(chunks) })
      for (const w of waiters.splice(0)) w()
      const path = req.url!
      if (path.startsWith('/slow')) return // never answered: the sender's timeout ends it
      if (path.startsWith('/fail')) return res.writeHead(500).end('receiver broke')
      if (path.startsWith('/gone')) return res.writeHead(410).end()
      if (path.startsWith('/redirect')) return res.writeHead(302, { location: `${base}/ok/redirected` }).end()
      if (path.startsWith('/huge')) {
        res.writeHead(500)
        const mb = Buffer.alloc(1024 * 1024, 'x')
        let left = 20
        const more = () => {
          while (left > 0) {
            left--
            if (!res.write(mb)) return void res.once('drain', more)
          }
          res.end()
        }
        res.on('error', () => {})
        return more()
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  return {
    base,
    received,
    /** The requests to paths starting with `prefix`. */
    to: (prefix: string) => received.filter((r) => r.path.startsWith(prefix)),
    /** Resolves once `test()` holds, checked after each request (fails the test's wait after 30 s). */
    until(test: () => boolean, what: string, ms = 30_000): Promise<void> {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
        const check = () => {
          if (test()) {
            clearTimeout(timer)
            resolve()
          } else waiters.push(check)
        }
        check()
      })
    },
  }
}
