// The resume phase of `npm run bench`: how fast a client that missed events gets them back.
import pg from 'pg'
import WebSocket from 'ws'
import { mintToken, percentile, round } from './lib.ts'
import { type Plan, type Running, startParley } from './systems.ts'

const RESUME_RUNS = 10

export interface ResumeOptions {
  /** Where the instance's request log goes. */
  logDir: string
  groupSize: number
  /** Events the member missed. */
  missed: number
  log: (line: string) => void
  /** Node's own flags for the instance (`--cpu-prof`, say). */
  execArgv?: string[]
}

/**
 * Resume: a member who missed `missed` messages reconnects and asks for them; events replayed per second.
 * On an instance of its own, doing nothing else (so that the figure is the replay's, not the garbage of another
 * phase's 10,000 sockets), RESUME_RUNS resumes one after another: the first is a cold instance's (its code not
 * yet optimized, its connections not yet prepared), the median is what a running instance does.
 */
export async function resumePhase(databaseUrl: string, opts: ResumeOptions) {
  const sys = await startParley(databaseUrl, 1, { logDir: opts.logDir, execArgv: opts.execArgv && (() => opts.execArgv!) })
  try {
    return await resumeRuns(sys, await sys.seed(1, opts.groupSize), databaseUrl, opts)
  } finally {
    await sys.stop()
  }
}

async function resumeRuns(sys: Running, plan: Plan, databaseUrl: string, opts: ResumeOptions) {
  const conversationId = plan.senders[0].body.conversation_id
  const db = new pg.Client({ connectionString: databaseUrl })
  await db.connect()
  const { rows } = await db.query<{ last_seq: number; sender: string }>(
    `SELECT c.last_seq::int, p.user_id AS sender FROM conversations c JOIN participants p ON p.conversation_id = c.id WHERE c.id = $1 LIMIT 1`,
    [conversationId],
  )
  const { last_seq: seen, sender } = rows[0]
  const { rows: [session] } = await db.query<{ id: string }>(`SELECT id FROM sessions WHERE user_id = $1 AND ended_at IS NULL LIMIT 1`, [sender])
  // Through the real triggers: each row takes its seq, is logged and NOTIFYed.
  await db.query(
    `INSERT INTO messages (conversation_id, sender_id, message_type, content) SELECT $1, $2, 'text', 'missed ' || i FROM generate_series(1, $3::int) i`,
    [conversationId, sender, opts.missed],
  )
  await db.end()
  const runs: number[] = []
  let replayed = 0
  for (let run = 0; run < RESUME_RUNS; run++) {
    const ws = new WebSocket(`${sys.bases[0].replace('http', 'ws')}/ws?token=${mintToken(sender, session.id)}`)
    await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject))
    let frames = 0
    const t0 = performance.now()
    await new Promise<void>((resolve) => {
      ws.on('message', (data) => {
        const frame = JSON.parse(data.toString())
        if (frame.conversation_id === conversationId && frame.seq > seen) frames++
        if (frame.type === 'resumed') resolve()
      })
      ws.send(JSON.stringify({ type: 'resume', conversations: { [conversationId]: seen } }))
    })
    runs.push(frames / ((performance.now() - t0) / 1000))
    replayed = Math.min(replayed || frames, frames)
    ws.close()
    await new Promise((resolve) => ws.once('close', resolve))
  }
  const result = {
    missed: opts.missed, replayed, runs: runs.length,
    first_events_per_s: round(runs[0], 0), events_per_s: round(percentile([...runs].sort((a, b) => a - b), 50), 0),
  }
  opts.log(`resume: ${JSON.stringify(result)} (each run: ${runs.map((r) => round(r, 0)).join(", ")})`)
  return result
}
