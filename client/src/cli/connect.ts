// An SDK client for a command: a new one to sign in with, or one on the kept session, whose rotated tokens are
// written back to the session file (a spent refresh token used again would end the session).
import WebSocket from 'ws'
import { ParleyClient, type ClientOptions } from '../client.ts'
import { ParleyError, type Tokens } from '../types.ts'
import { readSession, type Session, writeSession } from './session.ts'

export const DEFAULT_URL = 'http://127.0.0.1:3000'

// Node 20 has no global WebSocket; the `ws` package has the browser's API.
const options = (baseUrl: string, tokens?: Tokens): ClientOptions => ({ baseUrl, WebSocket: WebSocket as unknown as ClientOptions['WebSocket'], tokens })

export const newClient = (url: string) => new ParleyClient(options(url.replace(/\/+$/, '')))

export interface Signed {
  client: ParleyClient
  session: Session
  /** Resolves once every new pair is on disk: await it before exiting. */
  saved(): Promise<void>
}

export async function signedIn(): Promise<Signed> {
  const session = await readSession()
  if (!session) throw new ParleyError('SIGNED_OUT', 'not signed in: run `parley login` first')
  const client = new ParleyClient(options(session.url, session))
  let writing = Promise.resolve()
  client.on('tokens', (t) => {
    Object.assign(session, { access_token: t.access_token, refresh_token: t.refresh_token, expires_at: t.expires_at })
    writing = writing.then(() => writeSession(session))
  })
  return { client, session, saved: () => writing }
}
