// The latency-against-send-rate plot, as a dependency-free SVG: p99 (solid) and p50 (dashed) of each
// system's capacity sweep, on a log latency axis, with the 100 ms line that defines capacity.

interface Point {
  rate: number
  p50_ms: number | null
  p99_ms: number | null
}

const COLORS: Record<string, string> = { parley: '#2563eb', peer: '#dc2626', floor: '#6b7280', 'parley, 1 commit/msg': '#93c5fd', 'parley, ws send': '#16a34a' }

export function renderPlot(series: Record<string, Point[]>, limitMs: number): string {
  const W = 720
  const H = 420
  const m = { l: 64, r: 160, t: 36, b: 48 }
  const rates = Object.values(series).flat().map((p) => p.rate)
  const maxRate = Math.max(...rates)
  const yMin = 1
  const yMax = 2000
  const x = (r: number) => m.l + (r / maxRate) * (W - m.l - m.r)
  const y = (ms: number) => {
    const v = Math.min(yMax, Math.max(yMin, ms))
    return m.t + (1 - Math.log10(v / yMin) / Math.log10(yMax / yMin)) * (H - m.t - m.b)
  }
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${m.l}" y="20" font-size="14" font-weight="bold">Send-to-frame latency on the other node vs send rate (2 nodes, 2,000 sockets, groups of 10)</text>`,
  ]
  for (const ms of [1, 10, 100, 1000]) {
    out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(ms)}" y2="${y(ms)}" stroke="#e5e7eb"/>`, `<text x="${m.l - 8}" y="${y(ms) + 4}" text-anchor="end">${ms} ms</text>`)
  }
  const step = maxRate > 2000 ? 500 : 200
  for (let r = 0; r <= maxRate; r += step) out.push(`<text x="${x(r)}" y="${H - m.b + 18}" text-anchor="middle">${r}</text>`)
  out.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle">messages sent per second (each delivered to 10 sockets)</text>`)
  out.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${y(limitMs)}" y2="${y(limitMs)}" stroke="#111" stroke-dasharray="2 3"/>`, `<text x="${W - m.r + 4}" y="${y(limitMs) + 4}">p99 limit</text>`)
  let legend = m.t + 10
  for (const [name, points] of Object.entries(series)) {
    const color = COLORS[name] ?? '#000'
    for (const [key, dash] of [['p99_ms', ''], ['p50_ms', '5 4']] as const) {
      const pts = points.filter((p) => p[key] !== null).map((p) => `${x(p.rate).toFixed(1)},${y(p[key]!).toFixed(1)}`)
      out.push(`<polyline fill="none" stroke="${color}" stroke-width="2" ${dash && `stroke-dasharray="${dash}"`} points="${pts.join(' ')}"/>`)
      if (key === 'p99_ms') for (const pt of pts) out.push(`<circle cx="${pt.split(',')[0]}" cy="${pt.split(',')[1]}" r="3" fill="${color}"/>`)
    }
    out.push(`<line x1="${W - m.r + 8}" x2="${W - m.r + 28}" y1="${legend}" y2="${legend}" stroke="${color}" stroke-width="2"/>`, `<text x="${W - m.r + 32}" y="${legend + 4}">${name}</text>`)
    legend += 18
  }
  out.push(`<text x="${W - m.r + 8}" y="${legend + 8}" fill="#555">solid: p99</text>`, `<text x="${W - m.r + 8}" y="${legend + 24}" fill="#555">dashed: p50</text>`, '</svg>')
  return `${out.join('\n')}\n`
}
