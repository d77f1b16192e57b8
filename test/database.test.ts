import { sql } from 'kysely'
import pg from 'pg'
import t from 'tap'
import { createDatabase } from '../src/database.ts'
import { testDatabase } from './helper.ts'

t.test('a connection lost in the middle of a transaction fails the transaction, not the process', async (t) => {
  const url = await testDatabase(t)
  const { db, pool } = createDatabase(url, 2)
  t.teardown(() => db.destroy())
  let lent: pg.PoolClient | undefined
  pool.on('acquire', (client) => (lent = client))
  let carryOn!: () => void
  const paused = new Promise<void>((resolve) => (carryOn = resolve))
  let started!: (pid: number) => void
  const backend = new Promise<number>((resolve) => (started = resolve))
  const transaction = db.transaction().execute(async (trx) => {
    started((await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(trx)).rows[0].pid)
    // Between two statements, as a transaction waits on its own work: no query of this client is running.
    await paused
    await sql`SELECT 1`.execute(trx)
  })
  const pid = await backend
  // (Not events.once: it rejects on the 'error' that comes first.)
  const ended = new Promise((resolve) => lent!.once('end', resolve))
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  await admin.query('SELECT pg_terminate_backend($1)', [pid])
  await admin.end()
  await ended
  carryOn()
  await t.rejects(transaction, 'the transaction fails')
  t.equal((await sql<{ one: number }>`SELECT 1 AS one`.execute(db)).rows[0].one, 1, 'and the pool serves the next query on a fresh connection')
})
