// The conversation list, and the open conversation's header.
import { $, day, h, time } from './dom.js'
import { renderReceipts } from './receipts.js'
import { openConversation } from './view.js'
import { renderSettings } from './dialogs.js'
import { api, avatar, isMuted, others, state, title, userName } from './state.js'

const activity = (c) => c.last_message?.created_at ?? c.updated_at ?? c.created_at
export const convAvatar = (c) => (c.is_group ? avatar(c.avatar_url, c.name) : avatar(others(c)[0]?.avatar_url, title(c)))
const isOnline = (c) => !c.is_group && others(c).some((u) => state.presence.get(u.id)?.is_online)

/**
 * A system message in words, from its ids (`system`) with the names known now, so that a name is shown as its
 * owner has it today; the server's own words when it has no ids or names are still loading.
 */
export function systemText(m) {
  const e = m.system
  const ids = e ? [e.actor_id, ...(e.user_ids ?? [])] : []
  if (!e || ids.some((id) => !state.users.has(id))) return m.content
  const actor = userName(e.actor_id)
  const them = (e.user_ids ?? []).map(userName).join(', ')
  switch (e.action) {
    case 'group_created': return `${actor} created the group "${e.name}"`
    case 'group_renamed': return `${actor} renamed the group to "${e.name}"`
    case 'photo_changed': return `${actor} changed the group photo`
    case 'members_added': return `${actor} added ${them}`
    case 'member_removed': return `${actor} removed ${them}`
    case 'role_changed': return `${actor} made ${them} ${e.role === 'admin' ? 'an admin' : 'a member'}`
    case 'member_left': return `${actor} left`
    case 'admin_inherited': return `${them} is now an admin`
    case 'message_pinned': return `${actor} pinned a message`
    default: return m.content
  }
}

export function addConversation(c) {
  state.conversations.set(c.id, c)
  if (state.open?.id === c.id) state.open = c
  for (const p of c.participants) rememberUser(p.user)
  api.client?.follow(c.id, c.last_seq)
}

/**
 * The freshest copy of a user wins everywhere: a new name or avatar seen in one conversation's members
 * replaces the old one in every other. (Presence comes from frames once known; is_online here is a first guess.)
 */
export function rememberUser(u) {
  const known = state.users.get(u.id)
  state.users.set(u.id, { ...known, ...u })
  if (!state.presence.has(u.id)) state.presence.set(u.id, { is_online: u.is_online })
  if (!known || (known.display_name === u.display_name && known.avatar_url === u.avatar_url)) return
  const profile = { username: u.username, display_name: u.display_name, avatar_url: u.avatar_url }
  for (const c of state.conversations.values()) for (const p of c.participants) if (p.user.id === u.id) Object.assign(p.user, profile)
  for (const el of document.querySelectorAll(`.sender[data-user="${CSS.escape(u.id)}"]`)) el.textContent = userName(u.id)
}

/**
 * A user's name and avatar are fetched again when they come online; conversations bring their members' too
 * (on open and on participant frames).
 */
export async function refreshUser(id) {
  const u = await api.get(`/users/${id}`).catch(() => null)
  if (!u) return
  rememberUser(u)
  renderList()
  renderSettings()
  renderReceipts()
}

/** Mine, archived or not: the list shows one kind at a time (the "Archived" button), from the same state. */
export async function loadConversations() {
  const [current, archived] = await Promise.all([api.get('/conversations?limit=100'), api.get('/conversations?archived=true&limit=100')])
  for (const c of [...current, ...archived]) addConversation(c)
  renderList()
}

$('#archived-toggle').addEventListener('click', (e) => {
  state.showArchived = !state.showArchived
  e.currentTarget.setAttribute('aria-pressed', String(state.showArchived))
  $('#list-heading').hidden = !state.showArchived
  renderList()
})

const loading = new Map()
/** A conversation this client has not seen yet (a new chat, or one it was added to). */
export function fetchConversation(id) {
  if (!loading.has(id)) {
    loading.set(id, api.get(`/conversations/${id}`).then((c) => {
      addConversation(c)
      renderList()
      return c
    }).catch(() => null).finally(() => loading.delete(id)))
  }
  return loading.get(id)
}

const KINDS = { image: 'Photo', video: 'Video', file: 'File' }
/** A message in a line: a file's caption when it has one, else what it is and its name. */
export function summary(m) {
  if (m.message_type === 'system') return systemText(m)
  if (m.message_type === 'text' || m.is_deleted) return m.content ?? ''
  return m.content || `${KINDS[m.message_type] ?? 'File'}: ${m.file_name ?? ''}`
}

function preview(c) {
  const typers = [...(state.typing.get(c.id)?.keys() ?? [])]
  if (typers.length) return h('span.preview.typing-preview', {}, 'typing…')
  const m = c.last_message
  if (!m) return h('span.preview', {}, 'No messages yet')
  const who = m.message_type === 'system' ? '' : m.sender_id === state.me.id ? 'You: ' : c.is_group ? `${userName(m.sender_id)}: ` : ''
  return h(`span.preview${m.is_deleted ? '.deleted' : ''}`, {}, who, summary(m))
}

export function renderList() {
  const list = [...state.conversations.values()].filter((c) => !!c.is_archived === state.showArchived)
    .sort((a, b) => activity(b).localeCompare(activity(a)))
  const empty = $('#no-conversations')
  empty.hidden = list.length > 0
  empty.textContent = state.showArchived ? 'No archived conversations.' : 'No conversations yet. Start one with “New chat”.'

  $('#conversations').replaceChildren(...list.map((c) => {
    const online = isOnline(c)
    const open = state.open?.id === c.id
    const unread = c.unread_count > 0 && !open
    const mentions = c.unread_mention_count > 0 && !open
    const muted = isMuted(c)
    return h('li', {},
      h('button.conversation', {
        type: 'button',
        dataset: { id: c.id },
        'aria-current': open ? 'true' : undefined,
        onclick: () => openConversation(c.id),
      },
      h('span.pic', {}, convAvatar(c),
        h(`span.dot${online ? '.online' : ''}`, { role: 'img', 'aria-label': c.is_group ? 'group' : online ? 'online' : 'offline', hidden: c.is_group })),
      h('span.name', {}, title(c)),
      h('time.when', { datetime: activity(c) }, time(activity(c))),
      preview(c),
      h('span.badges', {},
        muted ? h('span.muted-mark', { role: 'img', 'aria-label': 'Muted', title: 'Muted' }, '🔕') : null,
        mentions ? h('span.mention-badge', { 'aria-label': `${c.unread_mention_count} unread mention${c.unread_mention_count === 1 ? '' : 's'}` }, '@') : null,
        unread ? h(`span.badge${muted ? '.quiet' : ''}`, { 'aria-label': `${c.unread_count} unread` }, String(c.unread_count)) : null)))
  }))
  renderHeader()
}

function renderHeader() {
  const c = state.open
  if (!c) return
  $('#conv-title').textContent = title(c)
  $('#conv-avatar').replaceChildren(convAvatar(c))
  $('#group-settings').hidden = !c.is_group
  $('#conv-menu').hidden = false
  const dot = $('#conv-dot')
  dot.hidden = c.is_group
  const online = isOnline(c)
  dot.className = `dot${online ? ' online' : ''}`
  const other = others(c)[0]
  const n = c.participants.length
  $('#conv-status').textContent = c.is_group ? `${n} member${n === 1 ? '' : 's'}` : online ? 'online' : lastSeen(other && state.presence.get(other.id)?.last_seen)
}

const lastSeen = (iso) => (iso ? `last seen ${day(iso)} ${time(iso)}` : 'offline')
