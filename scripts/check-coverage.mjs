// tap 21 enforces only 100% or nothing; these are the floors the project holds itself to instead, one per part:
// the service (src/, db/) and the client SDK (client/src/, new in issue 16; it measured 98.3/98.3/99.1/87.3 when its
// coverage was first recorded in every run, and its fault tests miss some reconnect and refresh branches). The
// CLI (client/src/cli/) runs only as a child process in its tests, which records no coverage by design
// (test/cli-run.ts). Raise the floors as tests grow; never lower one to make a run pass.
import { readFile } from 'node:fs/promises'
import path from 'node:path'

const PARTS = [
  { name: 'client SDK', test: (file) => file.startsWith('client/src/'), floor: { lines: 96, statements: 96, functions: 96, branches: 85 } },
  { name: 'service', test: () => true, floor: { lines: 97, statements: 97, functions: 95, branches: 93 } },
]
const KINDS = ['lines', 'statements', 'functions', 'branches']

const root = path.resolve(import.meta.dirname, '..')
const summary = JSON.parse(await readFile(path.join(root, '.tap/report/coverage-summary.json'), 'utf8'))
const sums = new Map(PARTS.map((p) => [p, Object.fromEntries(KINDS.map((k) => [k, { covered: 0, total: 0 }]))]))
for (const [file, counts] of Object.entries(summary)) {
  if (file === 'total') continue
  const part = PARTS.find((p) => p.test(path.relative(root, file)))
  for (const k of KINDS) {
    sums.get(part)[k].covered += counts[k].covered
    sums.get(part)[k].total += counts[k].total
  }
}
const low = []
for (const part of PARTS) {
  for (const k of KINDS) {
    const { covered, total } = sums.get(part)[k]
    // A part no test loaded in this run (say, only some test files ran): say so, rather than 100%.
    if (total === 0) {
      console.log(`coverage ${part.name} ${k}: not recorded in this run (floor ${part.floor[k]}%)`)
      continue
    }
    const pct = Math.round((covered / total) * 10000) / 100
    console.log(`coverage ${part.name} ${k}: ${pct}% (floor ${part.floor[k]}%)`)
    if (pct < part.floor[k]) low.push(`${part.name} ${k}`)
  }
}
if (low.length) {
  console.error(`coverage below the floor: ${low.join(', ')}`)
  process.exit(1)
}
