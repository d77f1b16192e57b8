// Read receipts of the open conversation: the ticks on my messages, "Read by" under my latest in a group, and
// marking others' messages read when the page shows them.
import { h } from './dom.js'
import { renderList } from './list.js'
import { api, sorted, state, userName } from './state.js'

const ownMessages = () => sorted().filter((m) => m.sender_id === state.me.id && m.message_type !== 'system' && !m.is_deleted)

/**
 * Who has read my latest messages in the loaded history. A read covers everything before it, so the
 * receipts of the last few are enough: a reader found on a later one has read the earlier ones too.
 */
export async function loadReceipts(c) {
  if (c.participants.length < 2) return
  await Promise.all(ownMessages().slice(-5).map(async (m) => {
    const receipts = await api.get(`/messages/${m.id}/receipts`).catch(() => [])
    for (const r of receipts) if (r.user_id !== state.me.id) readUpTo(c.id, r.user_id, m.seq)
  }))
}

export function readUpTo(conversationId, userId, seq) {
  const readers = state.readers.get(conversationId) ?? new Map()
  state.readers.set(conversationId, readers)
  if ((readers.get(userId) ?? -1) >= seq) return
  readers.set(userId, seq)
  if (state.open?.id === conversationId) renderReceipts()
}

/** The names of those who have read the open conversation up to `seq`. */
function readersOf(seq) {
  const readers = [...(state.readers.get(state.open.id) ?? [])]
  return readers.filter(([, s]) => s >= seq).map(([id]) => userName(id)).sort((a, b) => a.localeCompare(b))
}

export function setTicks(el) {
  const names = readersOf(Number(el.dataset.seq))
  const read = names.length > 0
  el.textContent = read ? '✓✓' : '✓'
  el.classList.toggle('read', read)
  const label = !read ? 'Sent' : state.open.is_group ? `Read by ${names.join(', ')}` : 'Read'
  el.setAttribute('aria-label', label)
  el.title = label
}

export function renderReceipts() {
  if (!state.open) return
  for (const el of document.querySelectorAll('#message-list .ticks')) setTicks(el)
  renderReadBy()
}

/** In a group, who has read my latest message is spelled out under it (earlier ones: on the ticks' tooltip). */
export function renderReadBy() {
  for (const el of document.querySelectorAll('#message-list .read-by')) el.remove()
  const last = state.open?.is_group && ownMessages().filter((m) => !m.thread_id).at(-1)
  if (!last) return
  const names = readersOf(last.seq)
  const item = document.querySelector(`#message-list [data-id="${CSS.escape(last.id)}"]`)
  if (item && names.length) item.querySelector('.meta').after(h('p.read-by', {}, `Read by ${names.join(', ')}`))
}

/** Marks the newest message from someone else read, when the page shows it. */
export function markRead() {
  const c = state.open
  if (!c || document.visibilityState !== 'visible') return
  const latest = sorted().filter((m) => m.sender_id !== state.me.id).at(-1)
  if (!latest || latest.seq <= (state.myRead.get(c.id) ?? -1)) {
    if (c.unread_count || c.unread_mention_count) { c.unread_count = 0; c.unread_mention_count = 0; renderList() }
    return
  }
  state.myRead.set(c.id, latest.seq)
  c.unread_count = 0
  c.unread_mention_count = 0
  renderList()
  api.post(`/messages/${latest.id}/read`).catch(() => state.myRead.delete(c.id))
}
document.addEventListener('visibilitychange', markRead)

