// parley login · register · logout
import type { AuthTokens } from '../types.ts'
import { DEFAULT_URL, newClient, signedIn } from './connect.ts'
import type { Output } from './output.ts'
import { ask, doneAsking } from './prompt.ts'
import { readSession, removeSession, sessionPath, writeSession } from './session.ts'

export interface Credentials {
  url?: string
  username?: string
  password?: string
  email?: string
  displayName?: string
}

async function credentials(opts: Credentials) {
  const username = opts.username ?? (await ask('username: ', { flag: '--username' }))
  const password = opts.password ?? process.env.PARLEY_PASSWORD ?? (await ask('password: ', { secret: true, flag: '--password' }))
  doneAsking()
  return { url: opts.url ?? process.env.PARLEY_URL ?? DEFAULT_URL, username, password }
}

async function keep(out: Output, url: string, auth: AuthTokens) {
  const { access_token, refresh_token, expires_in, user } = auth
  await writeSession({ url, user: { id: user.id, username: user.username }, access_token, refresh_token, expires_at: Date.now() + expires_in * 1000 })
  out.result({ user, url, session_file: sessionPath() }, () => `signed in to ${url} as @${user.username}`)
}

export async function login(out: Output, opts: Credentials) {
  const { url, username, password } = await credentials(opts)
  const client = newClient(url)
  try {
    await keep(out, client.opts.baseUrl, await client.login(username, password))
  } finally {
    client.close()
  }
}

export async function register(out: Output, opts: Credentials) {
  const { url, username, password } = await credentials(opts)
  const client = newClient(url)
  try {
    const auth = await client.register({ username, password, email: opts.email, display_name: opts.displayName })
    await keep(out, client.opts.baseUrl, auth)
  } finally {
    client.close()
  }
}

/** Ends the session on the server (its refresh token stops working) and forgets it here. */
export async function logout(out: Output) {
  const session = await readSession()
  if (session) {
    const { client } = await signedIn()
    await client.logout()
    await removeSession()
  }
  out.result({ signed_out: Boolean(session) }, () => (session ? `signed out of ${session.url}` : 'not signed in'))
}
