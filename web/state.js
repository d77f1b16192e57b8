// What every part of the client shares: the API (the session's SDK client), signed file links, and the state they fill.
import { Api } from './api.js'
import { h } from './dom.js'
import { FileLinks } from './files.js'

export const api = new Api()
export const links = new FileLinks(api)

export const state = {
  me: null,
  /** id → Conversation */
  conversations: new Map(),
  /** user id → { is_online, last_seen } from participants and presence frames */
  presence: new Map(),
  /** user id → public User, the freshest seen: names and avatars of members and past members */
  users: new Map(),
  /** the open conversation */
  open: null,
  /** its messages, by id (thread replies too: they count for reading), and in seq order */
  messages: new Map(),
  hasOlder: false,
  /** whether newer messages than the loaded ones exist: reading back from a search result */
  hasNewer: false,
  /** conversation id → Map(user id → the highest seq they have read), from receipts and read frames */
  readers: new Map(),
  /** conversation id → highest seq I marked read */
  myRead: new Map(),
  /** conversation id → Map(user id → timer) */
  typing: new Map(),
  editing: null,
  /** the id of the first message that was unread when the conversation was opened (the "New messages" line) */
  firstUnread: null,
  /** the open conversation's pinned messages, most recently pinned first */
  pins: [],
  /** the list shows the archived conversations instead of the others */
  showArchived: false,
}

export const nameOf = (u) => (u ? u.display_name || u.username : 'Someone')
export const userName = (id) => nameOf(state.users.get(id))
export const others = (c) => c.participants.filter((p) => p.user.id !== state.me.id).map((p) => p.user)
export const title = (c) => (c.is_group ? c.name : others(c).map(nameOf).join(', ') || 'Just you')
export const isAdmin = (c) => c.participants.some((p) => p.user.id === state.me.id && p.role === 'admin')
/** A conversation muted until a time still to come (the server gives a past time as null, but time goes on). */
export const isMuted = (c) => !!c.muted_until && Date.parse(c.muted_until) > Date.now()
/** Pins: anyone in a direct conversation, admins only in a group. */
export const canPin = (c) => !c.is_group || isAdmin(c)
export const sorted = () => [...state.messages.values()].sort((a, b) => a.seq - b.seq)
export const size = (n) => (n == null ? '' : n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`)

export const initials = (name) => (name || '?').split(/\s+/).filter(Boolean).slice(0, 2).map((w) => [...w][0].toUpperCase()).join('') || '?'
/** A picture from /files (by a signed URL, as <img> sends no header), or initials. */
export function avatar(url, name) {
  if (!url) return h('span.avatar', { 'aria-hidden': 'true' }, initials(name))
  const img = h('img.avatar', { alt: '' })
  links.show(img, 'src', url)
  return img
}
