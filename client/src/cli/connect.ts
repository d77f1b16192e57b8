// An SDK client for a command: a new one to sign in with, or one on the kept session. Its refreshes go through
// the session file (shared-refresh.ts), which every parley process of this user shares.
import WebSocket from 'ws'
import { ParleyClient, type ClientOptions } from '../client.ts'
import { ParleyError } from '../types.ts'
import { readSession, type Session, sessionPath } from './session.ts'
import { sharedRefresh } from './shared-refresh.ts'

export const DEFAULT_URL = 'http://127.0.0.1:3000'

// Node 20 has no global WebSocket; the `ws` package has the browser's API.
const WS = WebSocket as unknown as ClientOptions['WebSocket']

export const newClient = (url: string) => new ParleyClient({ baseUrl: url.replace(/\/+$/, ''), WebSocket: WS })

export interface Signed {
  client: ParleyClient
  session: Session
}

export async function signedIn(): Promise<Signed> {
  const path = sessionPath()
  const session = await readSession(path)
  if (!session) throw new ParleyError('SIGNED_OUT', 'not signed in: run `parley login` first')
  const client = new ParleyClient({ baseUrl: session.url, WebSocket: WS, tokens: session, fetch: sharedRefresh(path, session.user.id) })
  return { client, session }
}
