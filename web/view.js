// The open conversation: its history, how each message is shown, receipts, and keeping it current.
import { restoreDraft, setReply } from './composer.js'
import { $, day, h, time } from './dom.js'
import { fetchConversation, renderList, summary, systemText } from './list.js'
import { showHistory, showPins, viewImage } from './message-dialogs.js'
import { icon } from './icons.js'
import { messageMenu, toggleReaction } from './menu.js'
import { applyConversation } from './events.js'
import { api, links, nameOf, size, sorted, state, userName } from './state.js'
import { richText } from './text.js'
import { closeThread, openThread, threadChanged } from './thread.js'
import { jumpTo } from './history.js'
import { renderPending } from './send.js'

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

const ownMessages = () => sorted().filter((m) => m.sender_id === state.me.id && m.message_type !== 'system' && !m.is_deleted)

/**
 * Who has read my latest messages in the loaded history. A read covers everything before it, so the
 * receipts of the last few are enough: a reader found on a later one has read the earlier ones too.
 */
async function loadReceipts(c) {
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

function setTicks(el) {
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
function renderReadBy() {
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

/** The message before `m` in the main list, to know whether `m` continues its group. */
function before(m) {
  const list = visible()
  const i = list.findIndex((x) => x.id === m.id)
  return i > 0 ? list[i - 1] : null
}

function quote(m) {
  const q = m.reply_to
  const text = q.is_deleted ? 'This message was deleted' : q.message_type === 'text' ? q.content : q.content || `${q.message_type}`
  return h('button.quote', {
    type: 'button',
    'aria-label': `Reply to ${userName(q.sender_id)}: ${text}. Show the original`,
    onclick: () => jumpTo(q.id),
  }, h('span.quote-sender', {}, userName(q.sender_id)), h(`span.quote-text${q.is_deleted ? '.deleted' : ''}`, {}, text))
}

function reactionChips(m) {
  if (!m.reactions?.length || m.is_deleted) return null
  return h('div.reactions', {}, ...m.reactions.map((r) => {
    const mine = r.user_ids.includes(state.me.id)
    const who = r.user_ids.map(userName).join(', ')
    return h('button.reaction', {
      type: 'button',
      'aria-pressed': String(mine),
      'aria-label': `${r.emoji} ${r.count}: ${who}${mine ? ' (you: click to take it back)' : ''}`,
      title: who,
      dataset: { emoji: r.emoji },
      onclick: () => toggleReaction(m, r.emoji),
    }, h('span.emoji', {}, r.emoji), h('span.count', {}, String(r.count)))
  }))
}

/** The member usernames a message mentions, lower-cased, with their ids. */

/**
 * The box an image will fill, before it loads (the Message says its size): the list does not jump when it
 * arrives, and a conversation opened at its newest message stays there. As `.media img` in the CSS bounds it,
 * and never wider than the preview itself (at most 480×480, never enlarged).
 */
function reserveSize(img, m) {
  if (!m.width || !m.height) return
  const natural = m.width * Math.min(1, 480 / m.width, 480 / m.height)
  img.style.aspectRatio = `${m.width} / ${m.height}`
  img.style.width = `min(18rem, 70vw, ${((14 * m.width) / m.height).toFixed(3)}rem, ${natural.toFixed(1)}px)`
}
function mentioned(m) {
  const map = new Map()
  for (const id of m.mentions ?? []) {
    const u = state.users.get(id)
    if (u) map.set(u.username.toLowerCase(), id)
  }
  return map
}

/** One message as a list item; `inThread` for the thread panel (no thread link there). */
export function messageItem(m, { grouped = false, inThread = false } = {}) {
  if (m.message_type === 'system') return h('li.system', { dataset: { id: m.id } }, systemText(m))
  const own = m.sender_id === state.me.id
  const c = state.open
  const body = m.is_deleted
    ? h('p.text.deleted', {}, m.content)
    : state.editing === m.id ? editor(m) : m.content ? h('p.text', {}, ...richText(m.content, mentioned(m), state.me.id)) : null
  let media = null
  if (!m.is_deleted && m.file_url) {
    const name = m.file_name ?? 'file'
    const img = m.message_type === 'image' ? h('img', { alt: name }) : null
    media = img
      ? h('a.media', { target: '_blank', rel: 'noopener noreferrer', 'aria-label': `Open image ${name}`, onclick: (e) => viewImage(e, m) }, img)
      : m.message_type === 'video'
        ? h('video.media', { controls: true, preload: 'metadata', 'aria-label': name })
        : h('a.file', { download: name }, icon('file'), ` ${name}`, h('span.size', {}, ` ${size(m.file_size)}`))
    links.show(media, media.tagName === 'A' ? 'href' : 'src', m.file_url)
    if (img) {
      reserveSize(img, m)
      // The preview in the list; the full image only in the viewer.
      if (m.thumbnail_url) links.showPreview(img, m.file_url)
      else links.show(img, 'src', m.file_url)
    }
  }
  const meta = h('span.meta', {},
    m.pinned_at && !m.is_deleted ? h('span.pinned-mark', { title: `Pinned by ${userName(m.pinned_by)}`, 'aria-label': 'Pinned' }, icon('pin')) : null,
    m.is_edited && !m.is_deleted ? h('button.edited', { type: 'button', 'aria-label': 'Edited: show the history', onclick: (e) => showHistory(m, e.currentTarget) }, 'edited') : null,
    h('time', { datetime: m.created_at }, time(m.created_at)),
    own && !m.is_deleted ? h('span.ticks', { dataset: { seq: String(m.seq) } }) : null)
  const ticks = meta.querySelector('.ticks')
  if (ticks) setTicks(ticks)
  const replies = m.thread_reply_count
  const threadLink = !inThread && replies > 0
    ? h('button.thread-link', { type: 'button', onclick: () => openThread(m.id) },
      `${replies} repl${replies === 1 ? 'y' : 'ies'}`, m.thread_last_reply_at ? h('span.last-reply', {}, ` · last ${time(m.thread_last_reply_at)}`) : null)
    : null
  const menu = !m.is_deleted && state.editing !== m.id
    ? h('button.menu-button', { type: 'button', 'aria-label': 'Message actions', 'aria-haspopup': 'menu', 'aria-expanded': 'false', onclick: (e) => messageMenu(m, e.currentTarget, { inThread }) }, icon('more'))
    : null
  const li = h(`li.message${own ? '.own' : '.theirs'}${grouped ? '.grouped' : ''}${m.pinned_at && !m.is_deleted ? '.pinned' : ''}`, { dataset: { id: m.id }, tabindex: '-1' },
    !own && c?.is_group && !grouped ? h('span.sender', { dataset: { user: m.sender_id } }, userName(m.sender_id)) : null,
    m.forwarded_from && !m.is_deleted ? h('p.forwarded', {}, 'Forwarded') : null,
    m.reply_to && !inThread ? quote(m) : null,
    media, body, reactionChips(m), meta, threadLink, menu)
  if (menu) longPress(li, () => messageMenu(m, menu, { inThread }))
  return li
}

/** A long press (touch, or a held mouse button) or a right click opens the message's menu. */
function longPress(el, open) {
  let timer = null
  const cancel = () => { clearTimeout(timer); timer = null }
  el.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || e.target.closest('button, a, textarea, video, .menu, .emoji-picker')) return
    cancel()
    timer = setTimeout(() => { timer = null; open() }, 500)
  })
  for (const type of ['pointerup', 'pointerleave', 'pointercancel']) el.addEventListener(type, cancel)
  el.addEventListener('pointermove', (e) => { if (Math.abs(e.movementX) + Math.abs(e.movementY) > 8) cancel() })
  el.addEventListener('contextmenu', (e) => {
    if (e.target.closest('a, textarea, video, .menu, .emoji-picker')) return
    e.preventDefault()
    cancel()
    open()
  })
}

function editor(m) {
  const input = h('textarea.edit-input', { 'aria-label': 'Edit message', rows: 2, maxlength: 5000 })
  input.value = m.content
  const save = async () => {
    const content = input.value.trim()
    if (!content || content === m.content) return cancel()
    try {
      const updated = await api.patch(`/messages/${m.id}`, { content })
      state.editing = null
      upsert(updated)
    } catch (err) {
      error.textContent = err.message
    }
  }
  const cancel = () => { state.editing = null; replaceItem(m.id); $('#composer-input').focus() }
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); save() }
    if (e.key === 'Escape') cancel()
  })
  const error = h('span.form-error', { role: 'alert' })
  queueMicrotask(() => { input.focus(); input.select() })
  return h('div.editor', {}, input,
    h('button.primary', { type: 'button', onclick: save }, 'Save'),
    h('button', { type: 'button', onclick: cancel }, 'Cancel'), error)
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

// ---------- pins ----------

export async function loadPins(c = state.open) {
  if (!c) return
  const pins = await api.get(`/conversations/${c.id}/pins`).catch(() => null)
  if (!pins || state.open !== c) return
  state.pins = pins
  c.pinned_count = pins.length
  renderPins()
}

function renderPins() {
  const bar = $('#pinned-bar')
  const latest = state.pins[0]
  bar.hidden = !state.open || !latest
  if (!latest) return
  const n = state.pins.length
  bar.replaceChildren(
    h('button.pinned-open', { type: 'button', 'aria-label': `${n} pinned message${n === 1 ? '' : 's'}: show them`, onclick: (e) => showPins(e.currentTarget) },
      icon('pin'), h('span.pinned-count', {}, `${n} pinned`), h('span.pinned-text', {}, `${nameOf(state.users.get(latest.sender_id))}: ${summary(latest)}`)))
}
