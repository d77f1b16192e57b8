// The `web_push` job of a new message: a notification to each member who is not connected anywhere (no open
// socket on any instance), has not muted the conversation, and was not notified of it in the last PUSH_INTERVAL
// seconds; to each of their subscribed browsers, encrypted for it (RFC 8291) and signed by this server's VAPID
// key (RFC 8292) by the `web-push` library. A push service answering 404 or 410 has forgotten the subscription:
// it is removed. One attempt (a late notification is worth less than none, and the throttle has already counted it).
import { sql } from 'kysely'
import webPush from 'web-push'
import type { DB } from '../database.ts'
import type { Message } from '../schemas/messages.ts'
import { postOut, type PostOptions } from './post.ts'

export interface WebPushOptions {
  vapid: { subject: string; publicKey: string; privateKey: string }
  intervalS: number
  post: PostOptions
}

interface Payload {
  conversation_id: string
  seq: number
}

interface Recipient {
  user_id: string
  sender_name: string
  group_name: string | null
}

/** What the service worker shows (web/sw.js). */
export interface PushNotice {
  conversation_id: string
  message_id: string
  title: string
  body: string
  mention: boolean
  reply: boolean
}

export function webPushDelivery(db: DB, opts: WebPushOptions) {
  return async (raw: unknown): Promise<void> => {
    const { conversation_id, seq } = raw as Payload
    const { rows: [event] } = await sql<{ json: string }>`
      SELECT payload_text AS json FROM parley_served_events WHERE conversation_id = ${conversation_id} AND seq = ${seq} AND type = 'new_message'`.execute(db)
    if (!event) return
    const m = JSON.parse(event.json) as Message
    if (m.message_type === 'system' || m.is_deleted || !m.sender_id) return
    const recipients = await due(db, m, seq, opts.intervalS)
    if (!recipients.length) return
    const subscriptions = await db.selectFrom('push_subscriptions').selectAll().where('user_id', 'in', recipients.map((r) => r.user_id)).execute()
    await Promise.all(subscriptions.map(async (s) => {
      const r = recipients.find((x) => x.user_id === s.user_id)!
      const notice = noticeOf(m, r)
      const details = webPush.generateRequestDetails({ endpoint: s.endpoint, keys: { p256dh: s.p256dh, auth: s.auth } }, JSON.stringify(notice), {
        vapidDetails: opts.vapid,
        TTL: 24 * 3600,
        contentEncoding: 'aes128gcm',
      })
      const result = await postOut(details.endpoint, details.body, details.headers as Record<string, string>, opts.post)
      if (result.status === 404 || result.status === 410) await db.deleteFrom('push_subscriptions').where('id', '=', s.id).execute()
    }))
  }
}

/**
 * The members to notify now, marked notified in the same statement: subscribed, not the sender, connected nowhere,
 * not muted, in the conversation at this message, and not notified of it within the interval.
 */
async function due(db: DB, m: Message, seq: number, intervalS: number): Promise<Recipient[]> {
  const { rows } = await sql<Recipient>`
    WITH candidates AS (
      SELECT p.user_id FROM participants p JOIN users u ON u.id = p.user_id
      WHERE p.conversation_id = ${m.conversation_id} AND p.has_push AND p.user_id <> ${m.sender_id}
        AND NOT u.is_online AND u.deleted_at IS NULL
        AND (p.muted_until IS NULL OR p.muted_until <= now()) AND p.joined_seq < ${seq} AND p.cleared_seq < ${seq}
    ), notified AS (
      INSERT INTO push_sent (user_id, conversation_id, sent_at)
      SELECT user_id, ${m.conversation_id}, now() FROM candidates
      ON CONFLICT (user_id, conversation_id) DO UPDATE SET sent_at = excluded.sent_at
      WHERE push_sent.sent_at <= now() - make_interval(secs => ${intervalS})
      RETURNING user_id
    )
    SELECT n.user_id, coalesce(s.display_name, s.username) AS sender_name, CASE WHEN c.is_group THEN c.name END AS group_name
    FROM notified n, users s, conversations c
    WHERE s.id = ${m.sender_id} AND c.id = ${m.conversation_id}`.execute(db)
  return rows
}

function noticeOf(m: Message, r: Recipient): PushNotice {
  const text = m.content ? m.content.slice(0, 200) : m.message_type === 'image' ? 'Sent a photo' : m.message_type === 'video' ? 'Sent a video' : 'Sent a file'
  return {
    conversation_id: m.conversation_id,
    message_id: m.id,
    title: r.group_name ? `${r.sender_name} in ${r.group_name}` : r.sender_name,
    body: text,
    mention: (m.mentions ?? []).includes(r.user_id),
    reply: m.reply_to?.sender_id === r.user_id,
  }
}
