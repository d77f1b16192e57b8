// Short human lines for conversations, messages and events.
import type { Conversation, Message, ServerEvent } from '../types.ts'

type Person = Conversation['participants'][number]['user']

const nameOf = (u: Person) => u.display_name || u.username

/** A group's name, or the other person of a direct conversation. */
export function titleOf(c: Conversation, me: string): string {
  if (c.is_group) return c.name ?? 'group'
  const other = c.participants.find((p) => p.user.id !== me)?.user
  return other ? `${nameOf(other)} (@${other.username})` : 'yourself'
}

export function conversationLine(c: Conversation, me: string): string {
  const last = c.last_message ? `  ${senderName(c, c.last_message.sender_id)}: ${body(c.last_message)}` : ''
  return `${c.id}  ${titleOf(c, me)}  ${c.unread_count} unread${last}`
}

export function senderName(c: Conversation, userId: string): string {
  const user = c.participants.find((p) => p.user.id === userId)?.user
  return user ? nameOf(user) : userId.slice(0, 8)
}

function body(m: Message): string {
  const text = m.content ?? ''
  if (m.message_type === 'text' || m.message_type === 'system') return text.length > 80 ? `${text.slice(0, 79)}…` : text
  return `[${m.message_type} ${m.file_name ?? ''}]${text ? ` ${text}` : ''}`
}

const time = (iso: string) => iso.slice(11, 16)

export function messageLine(c: Conversation, m: Message): string {
  return `${time(m.created_at)} ${senderName(c, m.sender_id)}: ${body(m)}`
}

/** One event of a conversation as a line: messages as text, the rest by their type. */
export function eventLine(c: Conversation, e: ServerEvent): string {
  switch (e.type) {
    case 'new_message':
      return messageLine(c, e.data)
    case 'message_edited':
      return `${time(e.data.updated_at)} ${senderName(c, e.data.sender_id)} edited: ${body(e.data)}`
    case 'message_deleted':
      return `${time(e.data.updated_at)} ${senderName(c, e.data.sender_id)} deleted a message`
    case 'typing_indicator':
      return `${senderName(c, e.data.user_id)} is ${e.data.is_typing ? '' : 'no longer '}typing`
    default:
      return `#${e.seq ?? '-'} ${e.type}`
  }
}
