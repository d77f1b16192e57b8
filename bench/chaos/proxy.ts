// A TCP proxy between one instance and PostgreSQL, which `npm run chaos` can stall: it stops forwarding, in
// both directions, without closing anything, as a network partition or a stuck middlebox does.
import net from 'node:net'

export interface StallableProxy {
  port: number
  /** The local ports of its connections to PostgreSQL: pg_stat_activity's client_port for this instance. */
  upstreamPorts(): number[]
  /** Stops forwarding for `ms`; what arrives meanwhile waits in the sockets' buffers, as in a real stall. */
  stall(ms: number): Promise<void>
  close(): Promise<void>
}

export async function startProxy(targetPort: number): Promise<StallableProxy> {
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket }>()
  let stalled = false
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1')
    const pair = { client, upstream }
    pairs.add(pair)
    // Forwarded by hand rather than piped: a stall must stop the flow at once, whatever is buffered.
    const forward = (from: net.Socket, to: net.Socket) => from.on('data', (chunk) => to.write(chunk))
    forward(client, upstream)
    forward(upstream, client)
    if (stalled) (client.pause(), upstream.pause())
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    for (const s of [client, upstream]) s.on('error', end).on('close', end)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: (server.address() as net.AddressInfo).port,
    upstreamPorts: () => [...pairs].map((p) => p.upstream.localPort).filter((p): p is number => p !== undefined),
    async stall(ms) {
      stalled = true
      for (const { client, upstream } of pairs) (client.pause(), upstream.pause())
      await new Promise((resolve) => setTimeout(resolve, ms))
      stalled = false
      for (const { client, upstream } of pairs) (client.resume(), upstream.resume())
    },
    async close() {
      for (const { client, upstream } of pairs) (client.destroy(), upstream.destroy())
      await new Promise((resolve) => server.close(resolve))
    },
  }
}
