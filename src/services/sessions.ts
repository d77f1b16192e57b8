import { sql } from 'kysely'
import type { DB } from '../database.ts'
import { EPHEMERAL_CHANNEL } from '../realtime/events.ts'
import type { Session } from '../schemas/sessions.ts'

/** Which of a user's open sessions to end: all of them, only these, or all but one. */
export interface SessionFilter {
  only?: string[]
  except?: string
}

/**
 * Ends the user's open sessions the filter names and returns their ids: each is marked ended (its access
 * tokens fail on their next use), its refresh tokens are revoked, and every instance hears of it (to close
 * the sessions' sockets) when the transaction commits — all or nothing. Joins the caller's transaction
 * if `db` is one, so that a password change and the end of the other sessions commit together.
 */
export async function endSessions(db: DB, userId: string, filter: SessionFilter = {}): Promise<string[]> {
  if (filter.only?.length === 0) return []
  const run = async (trx: DB) => {
    let ended = trx.updateTable('sessions').set({ ended_at: new Date() }).where('user_id', '=', userId).where('ended_at', 'is', null)
    if (filter.only) ended = ended.where('id', 'in', filter.only)
    if (filter.except) ended = ended.where('id', '<>', filter.except)
    const ids = (await ended.returning('id').execute()).map((r) => r.id)
    if (ids.length === 0) return ids
    await trx.updateTable('refresh_tokens').set({ revoked_at: new Date() }).where('family_id', 'in', ids).where('revoked_at', 'is', null).execute()
    const note = JSON.stringify({ type: 'session_ended', user_id: userId, session_ids: ids })
    await sql`SELECT pg_notify(${EPHEMERAL_CHANNEL}, ${note})`.execute(trx)
    return ids
  }
  return db.isTransaction ? run(db) : db.transaction().execute(run)
}

/** The user's sessions that can still be refreshed, most recently used first. */
export async function listSessions(db: DB, userId: string, currentId: string): Promise<Session[]> {
  const rows = await db
    .selectFrom('sessions as s')
    .select(['s.id', 's.created_at', 's.last_used_at', 's.user_agent'])
    .where('s.user_id', '=', userId)
    .where('s.ended_at', 'is', null)
    // A family whose last token expired unused is over without anyone having ended it.
    .where((eb) =>
      eb.exists(
        eb.selectFrom('refresh_tokens as r').select('r.id').whereRef('r.family_id', '=', 's.id').where('r.revoked_at', 'is', null).where('r.used_at', 'is', null).where('r.expires_at', '>', new Date()),
      ),
    )
    .orderBy('s.last_used_at', 'desc')
    .orderBy('s.id')
    .execute()
  return rows.map((r) => ({
    id: r.id,
    created_at: new Date(r.created_at).toISOString(),
    last_used_at: new Date(r.last_used_at).toISOString(),
    user_agent: r.user_agent,
    current: r.id === currentId,
  }))
}

/** The User-Agent header as a session keeps it: at most 255 characters, whole code points. */
export const userAgentOf = (header: string | undefined): string | null => (header ? [...header].slice(0, 255).join('') : null)
