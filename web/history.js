// Moving through the open conversation's history: older pages as I scroll up, and a window around a message
// far back (a search result, a quote) with newer pages as I scroll down from it.
import { $ } from './dom.js'
import { api, links, sorted, state } from './state.js'
import { openThread } from './thread.js'
import { openConversation, renderMessages } from './view.js'

const PAGE = 50

/** Adds a page to the loaded messages, keeping what is on screen where it is; false when nothing was loaded. */
async function loadPage(query, { keepBottom }) {
  const c = state.open
  const page = await api.get(`/conversations/${c.id}/messages?limit=${PAGE}&${query}`)
  await links.prefetch(page.map((m) => m.file_url))
  if (state.open !== c) return null
  for (const m of page) if (!state.messages.has(m.id)) state.messages.set(m.id, m)
  const box = $('#messages')
  const fromBottom = box.scrollHeight - box.scrollTop
  const top = box.scrollTop
  renderMessages()
  box.scrollTop = keepBottom ? box.scrollHeight - fromBottom : top
  return page
}

export async function loadOlder() {
  const oldest = sorted()[0]
  if (!state.open || !oldest || !state.hasOlder || state.loadingOlder) return false
  state.loadingOlder = true
  try {
    const page = await loadPage(`before=${oldest.id}`, { keepBottom: true })
    if (page) state.hasOlder = page.length === PAGE
    renderMessages()
    return !!page
  } finally {
    state.loadingOlder = false
  }
}

export async function loadNewer() {
  const newest = sorted().at(-1)
  if (!state.open || !newest || !state.hasNewer || state.loadingNewer) return false
  state.loadingNewer = true
  try {
    const page = await loadPage(`after=${newest.id}`, { keepBottom: false })
    if (page) state.hasNewer = page.length === PAGE
    renderMessages()
    return !!page
  } finally {
    state.loadingNewer = false
  }
}

$('#load-older').addEventListener('click', loadOlder)
$('#load-newer').addEventListener('click', loadNewer)
$('#messages').addEventListener('scroll', (e) => {
  const box = e.target
  if (box.scrollTop < 40) loadOlder()
  else if (box.scrollHeight - box.scrollTop - box.clientHeight < 40) loadNewer()
})

/** Replaces what is loaded with the messages around `id`: half a page before it, it, half a page after. */
async function loadAround(id) {
  const c = state.open
  const half = PAGE / 2
  const [older, target, newer] = await Promise.all([
    api.get(`/conversations/${c.id}/messages?limit=${half}&before=${id}`),
    api.get(`/messages/${id}`),
    api.get(`/conversations/${c.id}/messages?limit=${half}&after=${id}`),
  ]).catch(() => [])
  if (!target || state.open !== c) return
  const window = [...older, target, ...newer]
  await links.prefetch(window.map((m) => m.file_url))
  state.messages = new Map(window.map((m) => [m.id, m]))
  state.hasOlder = older.length === half
  state.hasNewer = newer.length === half
  state.firstUnread = null
  renderMessages()
}

/** Shows a message of the open conversation (loading the history around it), and marks it a moment. */
export async function jumpTo(id) {
  if (!state.messages.has(id)) await loadAround(id)
  const el = document.querySelector(`#message-list [data-id="${CSS.escape(id)}"]`)
  if (!el) return false
  el.scrollIntoView({ block: 'center' })
  el.classList.remove('highlight')
  void el.offsetWidth
  el.classList.add('highlight')
  el.focus({ preventScroll: true })
  return true
}

/** Opens a message wherever it is: its conversation at it, or, for a thread's reply, its root and the thread. */
export async function openAt(m) {
  if (state.open?.id !== m.conversation_id) await openConversation(m.conversation_id)
  if (state.open?.id !== m.conversation_id) return
  await jumpTo(m.thread_id ?? m.id)
  if (m.thread_id) await openThread(m.thread_id)
}
