import path from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'

const root = path.resolve(import.meta.dirname, '../../web')

// The web client's own policy: its scripts, styles and sockets come from this origin only. The API's
// (helmet's `default-src 'none'`) still covers everything else; this hook lives in this plugin's scope,
// so it reaches the static routes registered here and nothing else.
const CSP = [
  "default-src 'self'",
  "img-src 'self' blob: data:",
  "media-src 'self' blob:",
  "connect-src 'self' ws: wss:",
  "style-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ')

/** The bundled web client (web/), at `/`: plain files, no build step, nothing but the public API. */
export default async function web(app: FastifyInstance) {
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('content-security-policy', CSP)
    return payload
  })
  // One route per file found at start-up (no catch-all), so unknown paths keep the API's 404.
  await app.register(fastifyStatic, { root, prefix: '/', wildcard: false, index: ['index.html'] })
}
