// The breakdown's report: printed as it is measured, and kept whole for the file written at the end.
export const log = (s: string) => process.stderr.write(`${s}\n`)
const out: string[] = []
/** Printed and kept for the end (the report is printed again, whole, once everything is measured). */
export const say = (s = '') => {
  out.push(s)
  console.log(s)
}
/** Everything said so far, as Markdown. */
export const report = () => `${out.join('\n')}\n`

export const table = (rows: Record<string, unknown>[]) => {
  if (rows.length === 0) return say('(none)')
  const keys = Object.keys(rows[0])
  const cell = (v: unknown) => (v === null || v === undefined ? '' : String(v)).replace(/\|/g, '\\|')
  say(`| ${keys.join(' | ')} |`)
  say(`|${keys.map(() => '---').join('|')}|`)
  for (const r of rows) say(`| ${keys.map((k) => cell(r[k])).join(' | ')} |`)
}

export const oneLine = (q: string, max = 110) => {
  const s = q.replace(/\s+/g, ' ').trim()
  return s.length > max ? `${s.slice(0, max - 1)}…` : s
}
