// The session: one ParleyClient of the SDK per signed-in account (its tokens, the live connection, the outbox).
// Its refresh token and user id are kept in sessionStorage: per tab and gone with it, and not sent with every
// request as a cookie would be. The outbox is in IndexedDB, one database per account, so a message sent
// offline survives a reload and is sent as the one who wrote it.
import { IndexedDbOutbox, ParleyClient, unwrap } from './parley-client.js'
import { api } from './state.js'

const KEY = 'parley.session'

export const session = {
  /** Called with the client of a new session before it connects: wire its events here. */
  onStart: (_client) => {},
  /** Called with the user on every sign-in and when the account changes; with null when the session ends. */
  onUser: (_user) => {},
}

function kept() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY))
  } catch {
    return null
  }
}

function start(tokens, userId) {
  const client = new ParleyClient({ baseUrl: location.origin, tokens, outbox: new IndexedDbOutbox(`parley-outbox.${userId}`) })
  const keep = (refresh_token) => sessionStorage.setItem(KEY, JSON.stringify({ refresh_token, user_id: userId }))
  keep(tokens.refresh_token)
  client.on('tokens', (t) => keep(t.refresh_token))
  client.on('signed_out', () => endSession())
  api.client = client
  session.onStart(client)
  return client
}

/** Signs in or registers (`call` gets a client for that call alone), then starts the account's session. */
async function enter(call) {
  const once = new ParleyClient({ baseUrl: location.origin })
  let auth
  try {
    auth = await call(once)
  } finally {
    once.close()
  }
  start({ access_token: auth.access_token, refresh_token: auth.refresh_token }, auth.user.id)
  session.onUser(auth.user)
}

export const login = (username, password) => enter((c) => c.login(username, password))
export const register = (fields) => enter((c) => c.register(fields))

/** The tab's session from before a reload, if it has one; throws (and ends it) when it cannot be resumed. */
export async function restore() {
  const k = kept()
  if (!k) return false
  // No access token yet: the first call refreshes, which also proves the refresh token still works.
  const client = start({ access_token: '', refresh_token: k.refresh_token, expires_at: 0 }, k.user_id)
  try {
    session.onUser(await unwrap(client.rest.GET('/users/me')))
  } catch (err) {
    endSession(err.status === 401) // kept for a reload if the server was only out of reach
    throw err
  }
  return true
}

export async function logout() {
  await api.client?.logout().catch(() => {})
  endSession()
}

/** Ends the session in this tab (the account was deleted, or the server refused the refresh token). */
export function endSession(forget = true) {
  const client = api.client
  if (!client) return
  api.client = null
  client.close()
  client.outbox.storage.close()
  if (forget) sessionStorage.removeItem(KEY)
  session.onUser(null)
}
