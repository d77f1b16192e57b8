// The thread panel: a root message, its replies (oldest first), and a composer that posts into the thread.
import { $, h } from './dom.js'
import { sendMessage } from './send.js'
import { api, state } from './state.js'
import { messageItem } from './message-item.js'
import { replaceItem, upsert } from './view.js'

const panel = $('#thread')
const list = $('#thread-list')
const input = $('#thread-input')
/** the open thread's root id */
let root = null

export async function openThread(rootId) {
  const c = state.open
  if (!c) return
  root = rootId
  panel.hidden = false
  document.body.classList.add('show-thread')
  list.replaceChildren()
  const [first, replies] = await Promise.all([
    state.messages.get(rootId) ?? api.get(`/messages/${rootId}`).catch(() => null),
    api.get(`/messages/${rootId}/thread?limit=100`).catch(() => []),
  ])
  if (root !== rootId || state.open !== c || !first) return
  if (!state.messages.has(first.id)) state.messages.set(first.id, first)
  for (const m of replies) if (!state.messages.has(m.id)) state.messages.set(m.id, m)
  render()
  input.focus()
}

export function closeThread() {
  root = null
  panel.hidden = true
  document.body.classList.remove('show-thread')
  list.replaceChildren()
}

function replies() {
  return [...state.messages.values()].filter((m) => m.thread_id === root).sort((a, b) => a.seq - b.seq)
}

function render() {
  const first = state.messages.get(root)
  if (!first) return
  const n = first.thread_reply_count
  list.replaceChildren(
    h('li.thread-root', {}, h('ol.root-list', {}, messageItem(first, { inThread: true }))),
    h('li.thread-count', {}, `${n} repl${n === 1 ? 'y' : 'ies'}`),
    ...replies().map((m) => messageItem(m, { inThread: true })))
  list.lastElementChild?.scrollIntoView({ block: 'end' })
}

/** A message of the open conversation changed or arrived: the panel follows when it shows its thread. */
export function threadChanged(m) {
  if (!root || (m.id !== root && m.thread_id !== root)) return
  render()
}

/** A root's counters changed (thread_updated). */
export function threadUpdated({ message_id: id, thread_reply_count: count, thread_last_reply_at: last }) {
  const m = state.messages.get(id)
  if (!m) return
  m.thread_reply_count = count
  m.thread_last_reply_at = last
  replaceItem(id)
}

$('#thread-close').addEventListener('click', () => { closeThread(); $('#composer-input').focus() })
panel.addEventListener('keydown', (e) => { if (e.key === 'Escape' && !e.defaultPrevented && e.target === input) { closeThread(); $('#composer-input').focus() } })
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); $('#thread-composer').requestSubmit() }
})
$('#thread-composer').addEventListener('submit', async (e) => {
  e.preventDefault()
  const c = state.open
  const content = input.value.trim()
  const error = $('#thread-composer .form-error')
  error.textContent = ''
  if (!c || !root || !content) return
  input.value = ''
  try {
    upsert(await sendMessage({ conversation_id: c.id, content, thread_id: root }))
  } catch (err) {
    error.textContent = `Not sent: ${err.message}`
    if (!input.value) input.value = content
  }
})
