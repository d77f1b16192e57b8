// A `node --cpu-prof` profile (.cpuprofile) read as self time per function and per module (bench/breakdown.ts).
import { root } from './lib.ts'

interface ProfileNode {
  id: number
  callFrame: { functionName: string; url: string; lineNumber: number }
  children?: number[]
}
export interface CpuProfile {
  nodes: ProfileNode[]
  startTime: number
  endTime: number
  samples: number[]
  timeDeltas: number[]
}

/** Where a script belongs: a package under node_modules, a file of src/, Node's own internals, or V8's pseudo-frames. */
function moduleOf(url: string, fn: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native / V8 builtins)'
  const nm = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)
  if (nm) return nm[1]
  const src = new RegExp(`${root}/(.*)$`).exec(url.replace(/^file:\/\//, ''))
  if (src) return src[1]
  if (url.startsWith('node:')) return url.split('/').slice(0, 2).join('/')
  return url
}

/** Self time (ms) per function and per module, over samples taken inside [fromUs, toUs] (CLOCK_MONOTONIC, µs). */
export function selfTimes(profile: CpuProfile, fromUs: number, toUs: number) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]))
  const fns = new Map<string, number>()
  const mods = new Map<string, number>()
  let t = profile.startTime
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i]
    const dt = (profile.timeDeltas[i + 1] ?? 0) / 1000
    if (t < fromUs || t > toUs) continue
    const node = byId.get(profile.samples[i])!
    const { functionName, url, lineNumber } = node.callFrame
    if (functionName === '(idle)') continue
    total += dt
    const mod = moduleOf(url, functionName)
    const key = `${functionName || '(anonymous)'} — ${mod}${url ? `:${lineNumber + 1}` : ''}`
    fns.set(key, (fns.get(key) ?? 0) + dt)
    mods.set(mod, (mods.get(mod) ?? 0) + dt)
  }
  return { total, fns, mods }
}
