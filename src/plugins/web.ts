import { createHash } from 'node:crypto'
import path from 'node:path'
import fastifyStatic from '@fastify/static'
import { build } from 'esbuild'
import type { FastifyInstance } from 'fastify'

const root = path.resolve(import.meta.dirname, '../../web')
const sdkEntry = path.resolve(import.meta.dirname, '../../client/src/index.ts')

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

/**
 * The SDK (client/, TypeScript) as the one ES module the page imports: bundled by esbuild from its source at the
 * first request, so what the page runs is always the SDK of this checkout, with no build step to forget.
 */
let sdk: Promise<{ code: string; etag: string }> | undefined
function sdkBundle() {
  sdk ??= build({ entryPoints: [sdkEntry], bundle: true, format: 'esm', platform: 'neutral', target: 'es2022', write: false, logLevel: 'silent' }).then(
    (result) => {
      const code = result.outputFiles[0].text
      return { code, etag: `"${createHash('sha256').update(code).digest('base64url').slice(0, 27)}"` }
    },
    (err) => {
      sdk = undefined
      throw err
    },
  )
  return sdk
}

/** The bundled web client (web/), at `/`: plain ES modules, no build step, nothing but the public API (by the SDK). */
export default async function web(app: FastifyInstance) {
  app.addHook('onSend', async (_request, reply, payload) => {
    reply.header('content-security-policy', CSP)
    return payload
  })
  // One route per file found at start-up (no catch-all), so unknown paths keep the API's 404.
  await app.register(fastifyStatic, { root, prefix: '/', wildcard: false, index: ['index.html'] })
  app.get('/parley-client.js', { schema: { hide: true } }, async (request, reply) => {
    const { code, etag } = await sdkBundle()
    reply.header('etag', etag).header('cache-control', 'no-cache').type('text/javascript; charset=utf-8')
    if (request.headers['if-none-match'] === etag) return reply.code(304).send()
    return code
  })
}
