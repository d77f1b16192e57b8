// Typed REST calls: openapi-fetch over the generated paths, with the access token added, one refresh and retry
// after a 401, and a timeout (a stalled network must fail a call, not hang it).
import createClient, { type Client, type Middleware } from 'openapi-fetch'
import type { paths } from './generated/openapi.ts'
import type { TokenManager } from './tokens.ts'
import { ParleyError } from './types.ts'

export type Rest = Client<paths>

export interface RestOptions {
  baseUrl: string
  fetch?: typeof fetch
  /** ms before a call is abandoned (default 15 000). */
  timeoutMs?: number
}

/** A typed client; with `tokens`, every call carries the access token. */
export function createRest(opts: RestOptions, tokens?: TokenManager): Rest {
  const base = opts.fetch ?? globalThis.fetch
  const timeoutMs = opts.timeoutMs ?? 15_000
  const timed = (input: Request, init?: RequestInit) =>
    base(input, { ...init, signal: AbortSignal.any([input.signal, AbortSignal.timeout(timeoutMs)]) })
  // A copy of each authorized request, to send again once after a refresh if the server answers 401.
  const copies = new WeakMap<Request, Request>()
  const auth: Middleware = {
    async onRequest({ request }) {
      if (!tokens?.tokens || request.headers.has('authorization')) return request
      request.headers.set('authorization', `Bearer ${await tokens.access()}`)
      copies.set(request, request.clone())
      return request
    },
    async onResponse({ request, response }) {
      const copy = copies.get(request)
      if (response.status !== 401 || !copy) return response
      const fresh = await tokens!.refresh().catch(() => undefined)
      if (!fresh) return response
      copy.headers.set('authorization', `Bearer ${fresh.access_token}`)
      return timed(copy)
    },
  }
  const client = createClient<paths>({ baseUrl: opts.baseUrl, fetch: timed as typeof fetch })
  if (tokens) client.use(auth)
  return client
}

/** The data of a call, or its error as a ParleyError (the API's `{error, code}`; NETWORK when there was no answer). */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result: Awaited<typeof call>
  try {
    result = await call
  } catch (err) {
    if (err instanceof ParleyError) throw err // from the SDK itself, e.g. a refused refresh before the call
    throw new ParleyError('NETWORK', err instanceof Error ? err.message : String(err))
  }
  if (result.response.ok) return result.data as T
  const body = result.error as { error?: string; code?: string; details?: string[] } | undefined
  throw new ParleyError(body?.code ?? 'HTTP_ERROR', body?.error ?? result.response.statusText, result.response.status, body?.details)
}
