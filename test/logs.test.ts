import { once } from 'node:events'
import t from 'tap'
import { testDatabase } from './helper.ts'
import { startServer, stopServer } from './processes.ts'
import { WsClient } from './ws-client.ts'

// The real entry point, its real log output: every secret a session handles goes through it, none comes out.

t.test('no password or token reaches the logs; request lines carry their request id', async (t) => {
  const url = await testDatabase(t)
  const server = await startServer(t, { DATABASE_URL: url, JWT_SECRET: 's'.repeat(40) })
  const { base, logs } = server
  const username = `logs_${process.pid}`
  const password = 'Secr3t-first-password'
  const newPassword = 'Secr3t-second-password'
  const secrets: string[] = [password, newPassword]

  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
      body: typeof body === 'string' ? body : body === undefined ? undefined : JSON.stringify(body),
    })
    const text = await res.text()
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined }
  }
  /** Keeps every token an answer carries as a secret to look for. */
  const keep = (body: { access_token: string; refresh_token: string }) => {
    secrets.push(body.access_token, body.refresh_token)
    return body
  }

  const registered = await call('POST', '/auth/register', { username, password }, { 'x-request-id': 'test-register-1' })
  t.equal(registered.status, 201)
  t.equal(registered.headers.get('x-request-id'), 'test-register-1', 'a supplied request id is echoed')
  keep(registered.body)
  const loggedIn = keep((await call('POST', '/auth/login', { username, password })).body)
  const refreshed = keep((await call('POST', '/auth/refresh', { refresh_token: loggedIn.refresh_token })).body)
  const auth = { authorization: `Bearer ${refreshed.access_token}` }

  // Tokens in a query string and in the WebSocket subprotocol.
  const viaQuery = await WsClient.open(base, refreshed.access_token)
  await viaQuery.sync()
  viaQuery.close()
  const viaProtocol = await WsClient.open(base, refreshed.access_token, { protocol: true })
  await viaProtocol.sync()
  viaProtocol.close()
  t.equal((await call('GET', `/users/me?token=${refreshed.access_token}&x=1`)).status, 401, 'the query token is for GET /ws and files only')

  t.equal((await call('PATCH', '/users/me', { password: newPassword, current_password: password }, auth)).status, 200, 'password changed')
  const again = keep((await call('POST', '/auth/login', { username, password: newPassword })).body)
  // Failures too: a wrong password, a body that is not JSON around a password, a reused refresh token.
  t.equal((await call('POST', '/auth/login', { username, password: `${password}-wrong` })).status, 401)
  t.equal((await call('POST', '/auth/login', `{"username":"${username}","password":"${newPassword}"`)).status, 400)
  t.equal((await call('POST', '/auth/refresh', { refresh_token: loggedIn.refresh_token })).status, 401)
  t.equal((await call('POST', '/auth/logout', { refresh_token: again.refresh_token }, { 'x-request-id': 'test-last', authorization: `Bearer ${again.access_token}` })).status, 204)

  const closed = once(server.proc, 'close')
  t.equal(await stopServer(server.proc), 0)
  await closed
  const output = logs.join('\n')
  t.ok(logs.length > 12, `the server logged (${logs.length} lines)`)
  t.match(output, /\/ws\?token=\[redacted\]/, 'the socket URL is logged, its token masked')
  for (const secret of secrets) {
    t.notOk(output.includes(secret), `secret ${secret.slice(0, 12)}… is not in the logs`)
    // A JWT's signature alone would do for a forger: look for that part too.
    const part = secret.split('.')[2]
    if (part) t.notOk(output.includes(part), 'nor its signature')
  }
  t.notOk(/authorization|bearer\./i.test(output), 'no Authorization header or bearer subprotocol')

  const lines = logs.map((l) => JSON.parse(l))
  const requestLines = lines.filter((l) => l.req || l.res)
  t.ok(requestLines.length >= 12, 'request lines')
  t.ok(requestLines.every((l) => typeof l.reqId === 'string' && l.reqId !== ''), 'every request line has its reqId')
  const register = lines.filter((l) => l.reqId === 'test-register-1')
  t.same(register.map((l) => l.msg), ['request completed'], 'one line per request, with the supplied id as its reqId')
  t.match(register[0], { req: { method: 'POST', url: '/auth/register', remoteAddress: String }, res: { statusCode: 201 }, responseTime: Number }, 'saying what was asked, by whom, the answer and its time')
  t.ok(lines.some((l) => l.msg === 'websocket opened' && /\/ws\?token=\[redacted\]/.test(l.req.url)), 'a socket has its line when it opens')
  t.ok(lines.some((l) => l.reqId === 'test-last'))
})
