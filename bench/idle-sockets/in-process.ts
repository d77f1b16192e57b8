// bench/idle-sockets.ts's main measure: Parley built in this process (buildApp, as src/server.ts runs it:
// production, LOG_LEVEL=warn, as the bench runs it), RSS and heap per socket, and a heap snapshot before and after.
import { fork } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { copyFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import path from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import { migrateToLatest } from '../../db/migrate.ts'
import { buildApp } from '../../src/app.ts'
import { loadConfig } from '../../src/config.ts'
import { createDatabase } from '../../src/database.ts'
import { closeClients, GROUP, log, N, openClients, perSocketKb, seedUsers, withIdleDatabase } from './setup.ts'

export async function inProcess(): Promise<void> {
  v8.setFlagsFromString('--expose-gc')
  const gc = vm.runInNewContext('gc') as () => void
  const fullGc = async () => {
    for (let i = 0; i < 4; i++) {
      gc()
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  const mem = () => {
    const m = process.memoryUsage()
    return { rss: m.rss, heap: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers }
  }

  await withIdleDatabase(async (databaseUrl, dir) => {
    const JWT_SECRET = randomUUID() + randomUUID()
    const config = loadConfig({
      NODE_ENV: 'production',
      DATABASE_URL: databaseUrl,
      JWT_SECRET,
      LOG_LEVEL: 'warn',
      RATE_LIMIT_MAX: '100000000',
      AUTH_RATE_LIMIT_MAX: '100000000',
      DATA_DIR: dir,
    })
    const { db } = createDatabase(databaseUrl, config.DB_POOL_MAX)
    await migrateToLatest(db)
    const app = await buildApp({ config, db, jwtSecret: JWT_SECRET, databaseUrl, logger: { level: 'warn' } })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    const base = `http://127.0.0.1:${port}`

    const users = await seedUsers(base, databaseUrl, (sub, sid) => app.jwt.sign({ sub, sid }))
    log(`${N} users, ${Math.ceil(N / GROUP)} groups; server pid ${process.pid}`)

    // Before: settled, collected.
    await new Promise((r) => setTimeout(r, 1000))
    await fullGc()
    const before = mem()
    const snapshot = process.env.IDLE_SNAPSHOT !== '0'
    const beforeFile = snapshot ? v8.writeHeapSnapshot(path.join(dir, 'before.heapsnapshot')) : ''
    await fullGc()
    const beforeRss = mem().rss

    const t0 = performance.now()
    const { child } = await openClients(dir, port, users)
    const openedIn = (performance.now() - t0) / 1000
    const socketCount = app.realtime.hub.socketCount
    if (socketCount !== N) throw new Error(`${socketCount} sockets registered, ${N} expected`)
    // As bench/run.ts measures: 3 s after the last open, no GC forced.
    await new Promise((r) => setTimeout(r, 3000))
    const asBench = mem()
    await fullGc()
    const after = mem()
    const afterFile = snapshot ? v8.writeHeapSnapshot(path.join(dir, 'after.heapsnapshot')) : ''

    const result = {
      sockets: N,
      opened_in_s: Math.round(openedIn * 10) / 10,
      rss_mb: { before: Math.round(beforeRss / 2 ** 20), as_bench: Math.round(asBench.rss / 2 ** 20), after_gc: Math.round(after.rss / 2 ** 20) },
      kb_per_socket: {
        rss_as_bench: perSocketKb(asBench.rss - beforeRss),
        rss_after_gc: perSocketKb(after.rss - beforeRss),
        heap_after_gc: perSocketKb(after.heap - before.heap),
        external_after_gc: perSocketKb(after.external - before.external),
      },
    }
    console.log(JSON.stringify(result, null, 2))

    await closeClients(child)
    await app.close()
    await db.destroy()

    if (snapshot) {
      // Parsing two large snapshots takes more memory than this process should hold: a fresh one does it.
      const analyzer = fork(path.join(import.meta.dirname, '..', 'idle-sockets.ts'), [], {
        env: { ...process.env, IDLE_MODE: 'analyze', IDLE_BEFORE: beforeFile, IDLE_AFTER: afterFile },
        execArgv: ['--import', 'tsx', '--max-old-space-size=8192'],
      })
      await new Promise((r) => analyzer.once('exit', r))
      if (process.env.IDLE_KEEP === '1') {
        for (const f of [beforeFile, afterFile]) await copyFile(f, path.join(tmpdir(), path.basename(f)))
        log(`kept ${tmpdir()}/before.heapsnapshot and after.heapsnapshot`)
      }
    }
  })
}
