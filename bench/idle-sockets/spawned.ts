// IDLE_SPAWN=1: bench/idle-sockets.ts measured as bench/run.ts measures, on a server of its own: Parley as its own
// process (src/server.ts of IDLE_TREE, default this tree), RSS read from /proc 1 s after seeding and 3 s after the
// last open, no GC forced, no snapshot.
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { freePort } from '../../src/database.ts'
import { JWT_SECRET, mintToken } from '../lib.ts'
import { closeClients, openClients, perSocketKb, seedUsers, withIdleDatabase } from './setup.ts'

export async function spawned(): Promise<void> {
  const tree = path.resolve(process.env.IDLE_TREE ?? path.join(import.meta.dirname, '..', '..'))
  const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024
  await withIdleDatabase(async (databaseUrl, dir) => {
    const port = await freePort()
    const base = `http://127.0.0.1:${port}`
    const env = { ...process.env, NODE_ENV: 'production', JWT_SECRET, LOG_LEVEL: 'warn', RATE_LIMIT_MAX: '100000000', AUTH_RATE_LIMIT_MAX: '100000000', PORT: String(port), DATABASE_URL: databaseUrl, DATA_DIR: dir }
    const proc = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], { cwd: tree, env, stdio: ['ignore', 'inherit', 'inherit'] })
    try {
      while (!(await fetch(`${base}/health/ready`).then((r) => r.ok, () => false))) {
        if (proc.exitCode !== null) throw new Error(`server exited with ${proc.exitCode}`)
        await new Promise((r) => setTimeout(r, 100))
      }
      const users = await seedUsers(base, databaseUrl, (sub, sid) => mintToken(sub, sid))
      // The server's own heap figures (prom-client's default metrics), to tell live heap from heap kept.
      const heapOf = async () => {
        const text = await (await fetch(`${base}/metrics`)).text()
        const get = (name: string) => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN)
        return { used: get('nodejs_heap_size_used_bytes'), total: get('nodejs_heap_size_total_bytes'), external: get('nodejs_external_memory_bytes') }
      }
      await new Promise((r) => setTimeout(r, 1000))
      const heapBefore = await heapOf()
      const before = rss(proc.pid!)
      const { child, opened } = await openClients(dir, port, users)
      await new Promise((r) => setTimeout(r, 3000))
      const after = rss(proc.pid!)
      const heapAfter = await heapOf()
      // And later, once V8 has collected the garbage of the connection storm by itself (no GC forced).
      const later: Record<string, number> = {}
      for (const at of [10, 30]) {
        await new Promise((r) => setTimeout(r, at === 10 ? 7000 : 20000))
        later[`${at}s`] = perSocketKb(rss(proc.pid!) - before, opened)
      }
      const perSocket = (bytes: number) => perSocketKb(bytes, opened)
      console.log(JSON.stringify({
        tree,
        sockets: opened,
        rss_mb: { before: Math.round(before / 2 ** 20), after: Math.round(after / 2 ** 20) },
        kb_per_socket: perSocket(after - before),
        kb_per_socket_later: later,
        heap_kb_per_socket: { used: perSocket(heapAfter.used - heapBefore.used), total: perSocket(heapAfter.total - heapBefore.total), external: perSocket(heapAfter.external - heapBefore.external) },
      }))
      await closeClients(child)
    } finally {
      proc.kill('SIGTERM')
      await new Promise((r) => proc.once('exit', r))
    }
  })
}
