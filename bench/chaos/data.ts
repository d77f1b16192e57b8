// What `npm run chaos` writes and reads in the database itself: its members, and the messages stored per client_id.
import argon2 from 'argon2'
import pg from 'pg'
import { mintToken } from '../lib.ts'

export interface Group {
  conversationId: string
  users: Array<{ id: string; token: string }>
}

/** Users straight into the tables with sessions and minted tokens (no argon2 per user), groups through the API. */
export async function seed(adminUrl: string, base: string, opts: { groups: number; groupSize: number }): Promise<Group[]> {
  const db = new pg.Client({ connectionString: adminUrl })
  await db.connect()
  const hash = await argon2.hash('chaos-password', { type: argon2.argon2id })
  const { rows } = await db.query<{ id: string; sid: string }>(
    `WITH u AS (
       INSERT INTO users (username, display_name, password_hash)
       SELECT 'chaos_' || i, 'Chaos ' || i, $1 FROM generate_series(1, $2::int) i RETURNING id)
     , s AS (INSERT INTO sessions (id, user_id, user_agent) SELECT gen_random_uuid(), id, 'parley-chaos' FROM u RETURNING id, user_id)
     SELECT u.id, s.id AS sid FROM u JOIN s ON s.user_id = u.id ORDER BY u.id`,
    [hash, opts.groups * opts.groupSize],
  )
  await db.end()
  const users = rows.map((r) => ({ id: r.id, token: mintToken(r.id, r.sid) }))
  const groups: Group[] = []
  for (let g = 0; g < opts.groups; g++) {
    const members = users.slice(g * opts.groupSize, (g + 1) * opts.groupSize)
    const res = await fetch(`${base}/conversations`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${members[0].token}` },
      body: JSON.stringify({ is_group: true, name: `chaos ${g}`, participant_ids: members.slice(1).map((m) => m.id) }),
    })
    if (res.status !== 201) throw new Error(`creating a group: ${res.status} ${await res.text()}`)
    groups.push({ conversationId: ((await res.json()) as { id: string }).id, users: members })
  }
  return groups
}

/** Each client_id's stored message and how many there are (the unique index says at most one). */
export async function storedMessages(adminUrl: string, clientIds: string[]) {
  const db = new pg.Client({ connectionString: adminUrl })
  await db.connect()
  try {
    const { rows } = await db.query<{ client_id: string; id: string; count: number }>(
      `SELECT client_id, min(id::text) AS id, count(*)::int AS count FROM messages WHERE client_id = ANY($1) GROUP BY client_id`,
      [clientIds],
    )
    return new Map(rows.map((r) => [r.client_id, r]))
  } finally {
    await db.end()
  }
}
