import net from 'node:net'
import type { Test } from 'tap'

interface Link {
  client: net.Socket
  server: net.Socket
  up: boolean
  down: boolean
}

/**
 * A TCP proxy in front of instances, standing for the network and a load balancer: each new connection goes to
 * the first target that accepts it (a killed instance is passed over). `stall()` makes the connections open now
 * stop forwarding, as a dead path does: no data and no close reach either end; new connections work.
 * `block()` refuses new connections until `unblock()` (the client is offline).
 */
export async function tcpProxy(t: Test, targets: string[]) {
  const links = new Set<Link>()
  const clients = new Set<net.Socket>()
  let blocked = false
  const ports = targets.map((base) => Number(new URL(base).port))
  const connectAny = (i: number, cb: (s: net.Socket | undefined) => void): void => {
    if (i >= ports.length) return cb(undefined)
    let connected = false
    const s = net.connect(ports[i], '127.0.0.1')
    s.once('connect', () => ((connected = true), cb(s)))
    s.on('error', () => (connected ? undefined : connectAny(i + 1, cb)))
  }
  const proxy = net.createServer((client) => {
    client.on('error', () => {})
    clients.add(client)
    client.on('close', () => clients.delete(client))
    if (blocked) return client.destroy()
    client.pause()
    connectAny(0, (server) => {
      if (!server) return client.destroy()
      const link: Link = { client, server, up: true, down: true }
      links.add(link)
      server.on('error', () => {})
      client.on('data', (d) => link.up && server.write(d))
      server.on('data', (d) => link.down && client.write(d))
      // A stalled path carries no FIN either: each end finds out by itself.
      client.on('close', () => (links.delete(link), link.up && server.destroy()))
      server.on('close', () => (links.delete(link), link.down && client.destroy()))
      client.resume()
    })
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    for (const l of links) l.server.destroy()
    for (const c of clients) c.destroy()
    proxy.close()
  })
  return {
    base: `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
    /** The connections open now go silent; `downOnly` keeps carrying what the client sends (its answers are lost). */
    stall(opts: { downOnly?: boolean } = {}) {
      for (const l of links) {
        l.down = false
        if (!opts.downOnly) l.up = false
      }
    },
    /** The connections open now are closed at once, both ends (a dropped link, an instance's socket cut). */
    cut() {
      for (const l of links) {
        l.client.destroy()
        l.server.destroy()
      }
    },
    block: () => (blocked = true),
    unblock: () => (blocked = false),
    /** Connections open through it now. */
    get open() {
      return links.size
    },
  }
}
