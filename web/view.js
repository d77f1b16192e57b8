// The open conversation: its history in order, grouped by day and sender, and kept current (message-item.js
// shows each message, receipts.js the ticks, pins.js the pinned bar).
import { restoreDraft, setReply } from './composer.js'
import { $, day, h } from './dom.js'
import { applyConversation } from './events.js'
import { fetchConversation, renderList, summary } from './list.js'
import { messageItem } from './message-item.js'
import { loadPins, renderPins } from './pins.js'
import { loadReceipts, markRead, renderReadBy } from './receipts.js'
import { renderPending } from './send.js'
import { api, links, sorted, state } from './state.js'
import { closeThread, threadChanged } from './thread.js'

/** Consecutive messages of one sender closer than this are shown as one group. */
const GROUP_MS = 5 * 60_000

export async function openConversation(id) {
  const c = state.conversations.get(id) ?? (await fetchConversation(id))
  if (!c) return
  const unread = c.unread_count
  state.open = c
  state.messages = new Map()
  state.editing = null
  state.firstUnread = null
  state.pins = []
  closeThread()
  setReply(null)
  document.body.classList.add('show-conversation')
  $('#composer').hidden = false
  restoreDraft()
  renderList()
  renderPins()
  $('#message-list').replaceChildren()
  // The conversation again too: its members' names and avatars may have changed since it was loaded.
  const [page, fresh] = await Promise.all([
    api.get(`/conversations/${id}/messages?limit=50`),
    api.get(`/conversations/${id}`).catch(() => null),
  ])
  // Their files' URLs first, so that pictures and players render with them.
  await links.prefetch(page.map((m) => m.file_url))
  if (state.open !== c) return
  if (fresh) { applyConversation(c, fresh); renderList() }
  for (const m of page) state.messages.set(m.id, m)
  state.hasOlder = page.length === 50
  state.hasNewer = false
  state.firstUnread = firstUnread(unread)
  renderMessages()
  renderPending()
  const divider = $('#message-list .unread-divider')
  if (divider) divider.scrollIntoView({ block: 'start' })
  else scrollToBottom()
  markRead()
  $('#composer-input').focus()
  if (c.pinned_count > 0) loadPins(c)
  await loadReceipts(c)
}

/** The seq of the oldest of the last `count` messages that count as unread (others', not system, not deleted). */
function firstUnread(count) {
  if (!count) return null
  const counted = sorted().filter((m) => m.sender_id !== state.me.id && m.message_type !== 'system' && !m.is_deleted)
  return counted.at(-Math.min(count, counted.length))?.seq ?? null
}

export function closeConversation() {
  document.body.classList.remove('show-conversation')
  state.open = null
  closeThread()
  $('#composer').hidden = true
  $('#conv-menu').hidden = true
  $('#pinned-bar').hidden = true
  $('#conv-title').textContent = 'Select a conversation'
  $('#conv-status').textContent = ''
  $('#message-list').replaceChildren()
  renderPending()
  renderList()
}

/** The main list shows a thread's root, not its replies: those are in the thread panel. */
const visible = () => sorted().filter((m) => !m.thread_id)

const dayItem = (iso) => h('li.day', {}, h('time', { datetime: iso.slice(0, 10) }, day(iso)))
const unreadItem = () => h('li.unread-divider', {}, h('span', {}, 'New messages'))
/** Whether `m` continues `prev`'s group: the same sender, a few minutes apart, nothing between them. */
const continues = (prev, m) => prev && prev.message_type !== 'system' && m.message_type !== 'system' && prev.sender_id === m.sender_id &&
  Date.parse(m.created_at) - Date.parse(prev.created_at) < GROUP_MS

/**
 * The list is a list: day lines and the "New messages" line are list items of their own, not separators
 * among list items.
 */
export function renderMessages() {
  const items = []
  let prev = null
  let divided = false
  for (const m of visible()) {
    const newDay = !prev || day(prev.created_at) !== day(m.created_at)
    if (newDay) items.push(dayItem(m.created_at))
    const unreadHere = !divided && state.firstUnread !== null && m.seq >= state.firstUnread
    if (unreadHere) { items.push(unreadItem()); divided = true }
    items.push(messageItem(m, { grouped: !newDay && !unreadHere && continues(prev, m) }))
    prev = m
  }
  $('#message-list').replaceChildren(...items)
  $('#load-older').hidden = !state.hasOlder
  $('#load-newer').hidden = !state.hasNewer
  renderReadBy()
}

export function startEdit(id) {
  const previous = state.editing
  state.editing = id
  if (previous) replaceItem(previous)
  replaceItem(id)
}

/** Renders one message again where it is shown: the main list, and the thread panel. */
export function replaceItem(id) {
  const m = state.messages.get(id)
  if (!m) return
  const el = document.querySelector(`#message-list [data-id="${CSS.escape(id)}"]`)
  if (el) el.replaceWith(messageItem(m, { grouped: el.classList.contains('grouped') }))
  threadChanged(m)
  renderReadBy()
  for (const q of state.messages.values()) {
    // Replies quote it: their quotes follow an edit or a deletion.
    if (q.reply_to?.id === id && (q.reply_to.content !== m.content || q.reply_to.is_deleted !== m.is_deleted)) {
      q.reply_to = { ...q.reply_to, content: m.is_deleted ? m.content : summary(m).slice(0, 200), is_deleted: m.is_deleted }
      replaceItem(q.id)
    }
  }
}

const nearBottom = () => { const b = $('#messages'); return b.scrollHeight - b.scrollTop - b.clientHeight < 80 }
export const scrollToBottom = () => { const b = $('#messages'); b.scrollTop = b.scrollHeight }

/**
 * A message from a frame or an answer: added or updated in place, never shown twice. One with a file waits
 * for its URL (`ready` once asked), so that it renders with it; a newer copy meanwhile wins by updated_at.
 */
export function upsert(m, ready = false) {
  if (!ready && !m.is_deleted && m.file_url && state.open?.id === m.conversation_id && !links.known(m.file_url)) {
    links.prefetch([m.file_url]).then(() => upsert(m, true))
    return
  }
  const c = state.conversations.get(m.conversation_id)
  if (c && (!c.last_message || c.last_message.seq <= m.seq)) c.last_message = m
  renderList()
  if (state.open?.id !== m.conversation_id) return
  const existing = state.messages.get(m.id)
  if (existing && existing.updated_at > m.updated_at) return
  // The same copy again (my send's answer, then its frame, or the outbox's `sent`): nothing to render.
  if (existing && JSON.stringify(existing) === JSON.stringify(m)) return
  state.messages.set(m.id, m)
  if (existing) {
    if (state.editing !== m.id || m.is_deleted) { if (state.editing === m.id) state.editing = null; replaceItem(m.id) }
    return
  }
  if (m.thread_id) {
    threadChanged(m)
    markRead()
    return
  }
  // Reading further back (a search result): new messages are not next to what is shown. Mine brings the latest.
  if (state.hasNewer) {
    state.messages.delete(m.id)
    if (m.sender_id === state.me.id) openConversation(m.conversation_id)
    return
  }
  const stick = nearBottom() || m.sender_id === state.me.id
  const list = visible()
  const last = list.at(-2)
  if (last && last.seq > m.seq) renderMessages()
  else {
    const newDay = !last || day(last.created_at) !== day(m.created_at)
    if (newDay) $('#message-list').append(dayItem(m.created_at))
    $('#message-list').append(messageItem(m, { grouped: !newDay && continues(last, m) }))
    renderReadBy()
  }
  if (stick) scrollToBottom()
  markRead()
}

/** New reactions of a message (from a frame, or the answer to my own change). */
export function setReactions(id, reactions) {
  const m = state.messages.get(id)
  if (!m) return
  m.reactions = reactions
  replaceItem(id)
}

