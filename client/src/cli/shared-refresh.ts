// Refresh tokens rotate, and a spent one used again ends the session (src/services/auth.ts). Several parley
// processes share one session file (a `tail` in one terminal, sends in another), so each refresh is made under
// a lock file, and a pair another process got meanwhile is taken from the file instead of spending the old
// refresh token a second time. The new pair is written before the lock is released.
import { open, rm, stat } from 'node:fs/promises'
import { readSession, writeSession } from './session.ts'

/** A lock older than this was left by a process that died holding it. */
const STALE_MS = 15_000

/** A `fetch` for the SDK that shares `POST /auth/refresh` through the session file at `path`, for `userId`. */
export function sharedRefresh(path: string, userId: string, base: typeof fetch = globalThis.fetch): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init)
    if (request.method !== 'POST' || !new URL(request.url).pathname.endsWith('/auth/refresh')) return base(request)
    const { refresh_token } = (await request.clone().json()) as { refresh_token: string }
    return locked(`${path}.lock`, async () => {
      const kept = await readSession(path)
      const shared = kept?.user.id === userId ? kept : undefined
      let exchange = request
      if (shared && shared.refresh_token !== refresh_token) {
        // Another process refreshed already: take its pair while it lasts, else refresh from it (ours is spent).
        const left = shared.expires_at! - Date.now()
        if (left > 5_000) return Response.json({ ...shared, token_type: 'bearer', expires_in: Math.floor(left / 1000) })
        exchange = new Request(request, { body: JSON.stringify({ refresh_token: shared.refresh_token }) })
      }
      const response = await base(exchange)
      if (response.ok && shared) {
        const pair = (await response.clone().json()) as { access_token: string; refresh_token: string; expires_in: number }
        await writeSession({ ...shared, access_token: pair.access_token, refresh_token: pair.refresh_token, expires_at: Date.now() + pair.expires_in * 1000 }, path)
      }
      return response
    })
  }
}

async function locked<T>(lock: string, fn: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      await (await open(lock, 'wx', 0o600)).close()
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const age = await stat(lock).then((s) => Date.now() - s.mtimeMs, () => 0)
      if (age > STALE_MS) await rm(lock, { force: true })
      else await new Promise((resolve) => setTimeout(resolve, 50)) // another process is refreshing: a moment
    }
  }
  try {
    return await fn()
  } finally {
    await rm(lock, { force: true })
  }
}
