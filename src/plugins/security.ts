import cors from '@fastify/cors'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import helmet, { type HelmetOptions } from 'helmet'

/**
 * Security headers on every answer, and CORS for the origins in CORS_ORIGINS only. Registered before the
 * rate limits, so a 429 carries them too (a browser script can then read its Retry-After).
 */
export default fp(
  async function security(app: FastifyInstance, opts: { corsOrigins: string }) {
    const origins = opts.corsOrigins.split(',').map((o) => o.trim()).filter(Boolean)
    const headers = helmetHeaders({
      // The API answers JSON, which never needs to load anything: its CSP allows nothing. Pages set their
      // own (Swagger UI at /docs, the web client at /), and so do files (GET /files/{id}: sandboxed).
      contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
      // A web client on another listed origin shows files with <img src="/files/{id}?token=...">, a
      // no-cors load that `same-origin` would block. Without CORS origins nothing else may embed them.
      crossOriginResourcePolicy: { policy: origins.length ? 'cross-origin' : 'same-origin' },
    })
    app.addHook('onRequest', (_request, reply, done) => {
      reply.headers(headers)
      done()
    })
    await app.register(cors, {
      // No origins: no CORS headers at all, so browsers keep other sites' scripts out. `*` is literal
      // (tokens travel in a header, never in cookies, so no credentials mode is needed).
      origin: origins.includes('*') ? '*' : origins.length ? origins : false,
      methods: ['GET', 'HEAD', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'range', 'x-request-id'],
      exposedHeaders: ['retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'content-disposition', 'content-range', 'x-request-id'],
      maxAge: 600,
    })
  },
  { name: 'security' },
)

/**
 * The headers helmet sets with these options, worked out once. They depend on nothing in the request (no CSP
 * nonces), and helmet's middleware run per request cost 0.06 ms of every answer, a quarter of what a POST
 * spends in the instance before its INSERT (docs/SCALING.md, round 3).
 */
function helmetHeaders(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const res = {
    setHeader: (name: string, value: string) => void (headers[name.toLowerCase()] = String(value)),
    removeHeader: (name: string) => void delete headers[name.toLowerCase()],
  }
  let failed: unknown
  helmet(options)({} as IncomingMessage, res as unknown as ServerResponse, (err?: unknown) => void (failed = err))
  if (failed) throw failed
  return headers
}
