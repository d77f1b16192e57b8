// A load worker: a separate process that holds its share of the client sockets and sends its share of the
// messages, open-loop (at the scheduled times, whether or not earlier sends have been answered), so a slow
// system shows up as latency instead of slowing the load down. Driven over IPC by bench/run.ts.
//
// A message's content is "<id> <node> <scheduled time>": every receiver measures scheduled-send → frame on
// the same monotonic clock, and latency counts only frames that arrived on a node other than the sender's.
// Every send carries a `client_id` (the message's id), as every real client's does. Parley's sends go either
// by `POST /messages` (via 'post') or as `send` frames over the sender's own socket (via 'ws'), answered by
// the `ack` of the same `ref`.
import http from 'node:http'
import { io as ioClient, type Socket as IoSocket } from 'socket.io-client'
import WebSocket from 'ws'
import { monoMs } from './lib.ts'
import type { Plan, SenderSpec, SocketSpec } from './systems.ts'

export type WorkerCommand =
  | { cmd: 'connect'; plan: Plan }
  | { cmd: 'run'; rate: number; durationMs: number; warmupMs: number; drainMs: number; via?: Via }
  | { cmd: 'close' }

/** How a message is sent: `POST` (every system), or a WebSocket `send` frame (Parley only). */
export type Via = 'post' | 'ws'

export interface RunResult {
  sent: number
  failed: number
  /** Sends still unanswered when the run ended, or never started because too many were in flight. */
  unanswered: number
  framesReceived: number
  lost: number
  duplicated: number
  /** Cross-node latencies (ms) of messages scheduled after the warm-up. */
  latencies: number[]
  /** Scheduled send → the POST's answer or the frame's ack (ms), same messages: where the time goes, write or delivery. */
  answered: number[]
}

const MAX_IN_FLIGHT = 2000
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 })
let plan: Plan
let receive: (content: string, node: number) => void = () => {}
const clients: { close(): void }[] = []
/** Parley: each sender's socket, by `group:member`, and the sends it awaits an ack for, by ref. */
const senderSockets = new Map<string, WebSocket>()
const awaiting = new Map<string, (ok: boolean) => void>()
let runs = 0

function connect(spec: SocketSpec): Promise<void> {
  return new Promise((resolve, reject) => {
    if (plan.system === 'peer') {
      const socket: IoSocket = ioClient(spec.url, { transports: ['websocket'], auth: { rooms: spec.rooms }, reconnection: false })
      socket.on('connect', () => resolve())
      socket.on('connect_error', reject)
      socket.on('message', (content: string) => receive(content, spec.node))
      clients.push({ close: () => socket.close() })
      return
    }
    const url = plan.system === 'floor' ? `${spec.url}?rooms=${spec.rooms!.join(',')}` : spec.url
    const ws = new WebSocket(url)
    ws.once('open', () => resolve())
    ws.once('error', reject)
    if (spec.member !== undefined) senderSockets.set(`${spec.group}:${spec.member}`, ws)
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString())
      if (plan.system === 'floor') receive(frame.content, spec.node)
      else if (frame.type === 'new_message') receive(frame.data.content, spec.node)
      else if ((frame.type === 'ack' || frame.type === 'error') && frame.ref !== undefined) {
        const done = awaiting.get(frame.ref)
        awaiting.delete(frame.ref)
        done?.(frame.type === 'ack')
      }
    })
    // A socket that closes fails what it still awaits.
    ws.on('close', () => {
      for (const [ref, done] of awaiting) if (ref.startsWith(`${spec.group}:${spec.member}:`)) (awaiting.delete(ref), done(false))
    })
    clients.push({ close: () => ws.close() })
  })
}

function post(sender: SenderSpec, content: string, clientId: string): Promise<boolean> {
  const body = JSON.stringify({ ...sender.body, content, client_id: clientId })
  return new Promise((resolve) => {
    const req = http.request(sender.url, {
      method: 'POST',
      agent,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...(sender.token && { authorization: `Bearer ${sender.token}` }) },
    })
    req.on('response', (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode! < 300))
    })
    req.on('error', () => resolve(false))
    req.end(body)
  })
}

/** A `send` frame over the sender's socket; true once its `ack` arrives, false on an `error` of its ref. */
function sendFrame(sender: SenderSpec, content: string, clientId: string): Promise<boolean> {
  const ws = senderSockets.get(`${sender.group}:${sender.member}`)
  if (!ws || ws.readyState !== WebSocket.OPEN) return Promise.resolve(false)
  const ref = `${sender.group}:${sender.member}:${clientId}`
  return new Promise((resolve) => {
    awaiting.set(ref, resolve)
    ws.send(JSON.stringify({ type: 'send', ref, conversation_id: sender.body.conversation_id, content, client_id: clientId }))
  })
}

async function run(rate: number, durationMs: number, warmupMs: number, drainMs: number, via: Via): Promise<RunResult> {
  const send = via === 'ws' ? sendFrame : post
  // Ids (and so client_ids) unique over every run of this worker: a repeated client_id would be answered with the earlier message.
  const runNo = ++runs
  const received = new Map<string, number>()
  const latencies: number[] = []
  const answered: number[] = []
  let framesReceived = 0
  const start = monoMs()
  const measureFrom = start + warmupMs
  receive = (content, node) => {
    framesReceived++
    const [id, fromNode, at] = content.split(' ')
    received.set(id, (received.get(id) ?? 0) + 1)
    const scheduled = Number(at)
    if (Number(fromNode) !== node && scheduled >= measureFrom) latencies.push(monoMs() - scheduled)
  }
  const total = Math.round((rate * durationMs) / 1000)
  let scheduled = 0
  let sent = 0
  let failed = 0
  let inFlight = 0
  let skipped = 0
  const sentIds: string[] = []
  await new Promise<void>((resolve) => {
    const tick = () => {
      const due = Math.min(total, Math.floor(((monoMs() - start) * rate) / 1000) + 1)
      for (; scheduled < due; scheduled++) {
        const at = start + (scheduled * 1000) / rate
        if (inFlight >= MAX_IN_FLIGHT) {
          skipped++
          continue
        }
        const sender = plan.senders[scheduled % plan.senders.length]
        const id = `${process.pid}.${runNo}.${scheduled}`
        inFlight++
        send(sender, `${id} ${sender.node} ${at.toFixed(3)}`, id).then((ok) => {
          inFlight--
          if (at >= measureFrom) answered.push(monoMs() - at)
          if (!ok) return failed++
          sent++
          // Only accepted messages must arrive: a refused send is counted as failed, not lost.
          sentIds.push(id)
        })
      }
      if (scheduled >= total) resolve()
      else setTimeout(tick, 1)
    }
    tick()
  })
  // Drain: give the last frames time to arrive (and stop early once everything has).
  const deadline = monoMs() + drainMs
  while (monoMs() < deadline && (inFlight > 0 || framesReceived < sentIds.length * plan.groupSize)) await new Promise((r) => setTimeout(r, 20))
  receive = () => {}
  let lost = 0
  let duplicated = 0
  for (const id of sentIds) {
    const n = received.get(id) ?? 0
    if (n < plan.groupSize) lost += plan.groupSize - n
    if (n > plan.groupSize) duplicated += n - plan.groupSize
  }
  return { sent, failed, unanswered: inFlight + skipped, framesReceived, lost, duplicated, latencies, answered }
}

process.on('message', async (msg: WorkerCommand) => {
  if (msg.cmd === 'connect') {
    plan = msg.plan
    // A few at a time, as clients arrive, rather than 1,000 handshakes in one burst.
    for (let i = 0; i < plan.sockets.length; i += 50) await Promise.all(plan.sockets.slice(i, i + 50).map(connect))
    process.send!({ connected: plan.sockets.length })
  } else if (msg.cmd === 'run') {
    process.send!(await run(msg.rate, msg.durationMs, msg.warmupMs, msg.drainMs, msg.via ?? 'post'))
  } else {
    for (const c of clients) c.close()
    agent.destroy()
    process.send!({ closed: true }, () => process.exit(0))
  }
})
process.send!({ ready: true })
