// The faults `npm run chaos` injects, one after another, into a running cluster.
import pg from 'pg'
import type { Cluster } from '../../scripts/cluster.ts'
import type { EmbeddedDatabase } from '../../src/embedded-postgres.ts'
import type { StallableProxy } from './proxy.ts'

export interface World {
  cluster: Cluster
  /** Each instance's way to PostgreSQL. */
  proxies: StallableProxy[]
  /** The superuser's URL on the service's database. */
  adminUrl: string
  database: { current: EmbeddedDatabase; restart(): Promise<EmbeddedDatabase> }
}

export interface Fault {
  name: string
  /** Injects the fault and returns once it is over (what it broke may still be recovering). */
  inject(world: World, scale: { outageMs: number; stallMs: number }): Promise<void>
}

async function admin<T>(world: World, run: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: world.adminUrl })
  await c.connect()
  try {
    return await run(c)
  } finally {
    await c.end()
  }
}

/** The server processes of one instance's connections (found by the ports its proxy connects from). */
async function backendsOf(world: World, instance: number, listenerOnly = false): Promise<number[]> {
  const ports = world.proxies[instance].upstreamPorts()
  return admin(world, async (c) => {
    const { rows } = await c.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND ($2::boolean IS FALSE OR application_name = 'parley-listener')`,
      [ports, listenerOnly],
    )
    return rows.map((r) => r.pid)
  })
}

export const FAULTS: Fault[] = [
  {
    name: '(a) PostgreSQL stopped, then started',
    async inject(world, { outageMs }) {
      await world.database.current.stop()
      await new Promise((resolve) => setTimeout(resolve, outageMs))
      await world.database.restart()
    },
  },
  {
    name: "(b) one instance's connections terminated",
    async inject(world) {
      const pids = await backendsOf(world, 0)
      await admin(world, (c) => c.query('SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) pid', [pids]))
    },
  },
  {
    name: '(c) an instance SIGKILLed, then started',
    async inject(world) {
      world.cluster.instances[1].proc.kill('SIGKILL')
      await world.cluster.restart(1)
    },
  },
  {
    name: '(d) network stall between an instance and PostgreSQL',
    async inject(world, { stallMs }) {
      await world.proxies[2].stall(stallMs)
    },
  },
  {
    name: "(e) one listener's notifications stalled",
    async inject(world, { stallMs }) {
      // Its server process stopped: notifications queue for it and none reaches the instance, the connection
      // stays open. What the instance must notice by itself.
      const [pid] = await backendsOf(world, 0, true)
      if (pid === undefined) throw new Error('no listener connection found for parley-1')
      process.kill(pid, 'SIGSTOP')
      try {
        await new Promise((resolve) => setTimeout(resolve, stallMs))
      } finally {
        process.kill(pid, 'SIGCONT')
      }
    },
  },
]
