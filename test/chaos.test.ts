// The short form of `npm run chaos` (bench/chaos/run.ts): every fault under load, and nothing acknowledged
// lost, undelivered, doubled or out of order. Real processes: three instances behind nginx, one PostgreSQL
// stopped and started, connections terminated, an instance SIGKILLed, a TCP stall, a listener stopped.
import t from 'tap'
import { FAULTS } from '../bench/chaos/faults.ts'
import { printReport, runChaos, SHORT } from '../bench/chaos/run.ts'

// Three instances, nginx and a database stopped and started: longer than .taprc's two minutes on a busy box.
t.setTimeout(300_000)

t.test('faults under load lose nothing acknowledged', { timeout: 300_000 }, async (t) => {
  const report = await runChaos({ ...SHORT, log: (line) => t.comment(line) })
  printReport(report, (line) => t.comment(line))
  t.same(report.faults.map((f) => f.fault), ['warm-up', ...FAULTS.map((f) => f.name), 'final resume'], 'every fault was injected, in turn')
  for (const f of report.faults) {
    t.equal(f.missingFromDatabase, 0, `${f.fault}: every acknowledged message is in the database`)
    t.equal(f.notDelivered, 0, `${f.fault}: every acknowledged message reached every member`)
    t.equal(f.duplicates, 0, `${f.fault}: no message twice`)
    t.equal(f.outOfOrder, 0, `${f.fault}: every member got its conversation in order`)
  }
  for (const f of report.faults.slice(0, -1)) t.ok(f.acknowledged > 0, `${f.fault}: sends were acknowledged`)
  // Not a timing assertion: the run itself waits (up to two minutes) for every instance to answer ready again.
  for (const f of report.faults.slice(1, -1)) t.ok(f.readyAfterMs > 0, `${f.fault}: every instance ready again without a restart (but the one killed)`)
  t.equal(report.abandonedTwice, 0, 'an unacknowledged send is absent or stored once')
})
