// The composer: sending, typing, drafts per conversation, replies, @ autocomplete, and uploads (attach, paste, drop).
import { $, h } from './dom.js'
import { renderList, summary } from './list.js'
import { api, nameOf, state, userName } from './state.js'
import { sendMessage } from './send.js'
import { jumpTo } from './history.js'
import { upsert } from './view.js'

const input = $('#composer-input')
let typingSent = 0
let typingTimer = null

export function typing(isTyping) {
  const c = state.open
  if (!c) return
  clearTimeout(typingTimer)
  if (isTyping) {
    if (Date.now() - typingSent > 3000) {
      typingSent = Date.now()
      api.client?.typing(c.id, true)
    }
    typingTimer = setTimeout(() => typing(false), 4000)
  } else if (typingSent) {
    typingSent = 0
    api.client?.typing(c.id, false)
  }
}

// ---------- drafts ----------

const draftKey = (c) => `parley.draft.${state.me.id}.${c.id}`
function saveDraft() {
  const c = state.open
  if (!c) return
  if (input.value) localStorage.setItem(draftKey(c), input.value)
  else localStorage.removeItem(draftKey(c))
}
/** The open conversation's draft back in the composer (what I typed there before, even before a reload). */
export function restoreDraft() {
  input.value = state.open ? localStorage.getItem(draftKey(state.open)) ?? '' : ''
  resize()
}
function resize() {
  input.style.height = 'auto'
  if (input.value) input.style.height = `${Math.min(input.scrollHeight, 160)}px`
}

// ---------- replies ----------

let replyTo = null
/** Quote `m` in the next message (null: no longer). */
export function setReply(m) {
  replyTo = m
  const box = $('#reply-preview')
  box.hidden = !m
  if (!m) return box.replaceChildren()
  box.replaceChildren(
    h('button.quote', { type: 'button', onclick: () => jumpTo(m.id), 'aria-label': `Replying to ${userName(m.sender_id)}: show the message` },
      h('span.quote-sender', {}, `Replying to ${userName(m.sender_id)}`), h('span.quote-text', {}, summary(m))),
    h('button.cancel-reply', { type: 'button', 'aria-label': 'Cancel the reply', onclick: () => { setReply(null); input.focus() } }, '×'))
  input.focus()
}

// ---------- @ autocomplete ----------

const options = $('#mention-options')
let matches = []
let active = 0
/** The "@que" just before the caret, if any. */
function mentionQuery() {
  const upTo = input.value.slice(0, input.selectionStart)
  const m = /(?:^|[^\w@.])@(\w{0,32})$/.exec(upTo)
  return m ? { query: m[1].toLowerCase(), start: upTo.length - m[1].length - 1 } : null
}
function suggest() {
  const q = mentionQuery()
  const c = state.open
  matches = q && c
    ? c.participants.map((p) => p.user).filter((u) => u.id !== state.me.id &&
      (u.username.toLowerCase().startsWith(q.query) || (u.display_name ?? '').toLowerCase().split(/\s+/).some((w) => w.startsWith(q.query)))).slice(0, 8)
    : []
  active = Math.min(active, Math.max(0, matches.length - 1))
  options.hidden = matches.length === 0
  input.setAttribute('aria-expanded', String(matches.length > 0))
  options.replaceChildren(...matches.map((u, i) => h('li', {
    role: 'option',
    id: `mention-${i}`,
    'aria-selected': String(i === active),
    onpointerdown: (e) => { e.preventDefault(); pick(u) },
  }, h('span.name', {}, nameOf(u)), ' ', h('span.username', {}, `@${u.username}`))))
  if (matches.length) input.setAttribute('aria-activedescendant', `mention-${active}`)
  else input.removeAttribute('aria-activedescendant')
}
function pick(u) {
  const q = mentionQuery()
  if (!q) return
  const end = input.selectionStart
  input.value = `${input.value.slice(0, q.start)}@${u.username} ${input.value.slice(end)}`
  const caret = q.start + u.username.length + 2
  input.setSelectionRange(caret, caret)
  matches = []
  suggest()
  saveDraft()
  input.focus()
}

input.addEventListener('input', () => {
  resize()
  typing(input.value.length > 0)
  saveDraft()
  suggest()
})
input.addEventListener('blur', () => { matches = []; options.hidden = true; input.setAttribute('aria-expanded', 'false') })
input.addEventListener('keydown', (e) => {
  if (matches.length) {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault()
      active = (active + (e.key === 'ArrowDown' ? 1 : -1) + matches.length) % matches.length
      return suggest()
    }
    if (e.key === 'Enter' || e.key === 'Tab') { e.preventDefault(); return pick(matches[active]) }
    if (e.key === 'Escape') { e.preventDefault(); matches = []; options.hidden = true; return }
  }
  if (e.key === 'Escape' && replyTo) { e.preventDefault(); setReply(null); return }
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault()
    $('#composer').requestSubmit()
  }
})

$('#composer').addEventListener('submit', async (e) => {
  e.preventDefault()
  const c = state.open
  const content = input.value.trim()
  const error = $('#composer .form-error')
  error.textContent = ''
  if (!c || !content) return
  typing(false)
  const quoted = replyTo
  input.value = ''
  saveDraft()
  setReply(null)
  resize()
  const body = { conversation_id: c.id, content }
  if (quoted) body.reply_to_id = quoted.id
  try {
    upsert(await sendMessage(body))
  } catch (err) {
    error.textContent = `Not sent: ${err.message}`
    if (!input.value) { input.value = content; saveDraft() }
    if (quoted && !replyTo) setReply(quoted)
  }
})

// ---------- typing indicators ----------

export function renderTyping() {
  const c = state.open
  const typers = c ? [...(state.typing.get(c.id)?.keys() ?? [])].map(userName) : []
  $('#typing').textContent = typers.length ? `${typers.join(', ')} ${typers.length > 1 ? 'are' : 'is'} typing…` : ''
}

export function setTyping({ conversation_id: id, user_id: user, is_typing: on }) {
  const map = state.typing.get(id) ?? new Map()
  state.typing.set(id, map)
  clearTimeout(map.get(user))
  if (on) map.set(user, setTimeout(() => setTyping({ conversation_id: id, user_id: user, is_typing: false }), 7000))
  else map.delete(user)
  renderTyping()
  renderList()
}

// ---------- uploads: the file picker, a paste, or a drop ----------

/** Sends a file into the open conversation, with the composer's text as its caption. */
export async function uploadFile(file) {
  const c = state.open
  if (!file || !c) return
  const error = $('#composer .form-error')
  error.textContent = ''
  const caption = input.value.trim()
  const query = new URLSearchParams({ conversation_id: c.id })
  if (caption) query.set('caption', caption)
  const progress = uploadProgress(file.name || 'pasted file')
  try {
    upsert(await api.upload(`/messages/upload?${query}`, file, progress.update))
    if (caption && input.value.trim() === caption) { input.value = ''; saveDraft(); typing(false) }
  } catch (err) {
    error.textContent = `Not sent: ${err.message}`
  } finally {
    progress.done()
  }
}

$('#attach').addEventListener('change', (e) => {
  const file = e.target.files[0]
  e.target.value = ''
  uploadFile(file)
})
input.addEventListener('paste', (e) => {
  const files = [...(e.clipboardData?.files ?? [])]
  if (!files.length) return
  e.preventDefault()
  for (const f of files) uploadFile(f)
})
const pane = $('#conversation')
const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files')
pane.addEventListener('dragover', (e) => {
  if (!state.open || !hasFiles(e)) return
  e.preventDefault()
  e.dataTransfer.dropEffect = 'copy'
  pane.classList.add('dropping')
})
pane.addEventListener('dragleave', (e) => { if (!pane.contains(e.relatedTarget)) pane.classList.remove('dropping') })
pane.addEventListener('drop', (e) => {
  pane.classList.remove('dropping')
  if (!state.open || !e.dataTransfer?.files.length) return
  e.preventDefault()
  for (const f of e.dataTransfer.files) uploadFile(f)
})

/** A bar per file on its way up, above the composer, gone when the upload ends either way. */
function uploadProgress(name) {
  const bar = h('progress', { max: 1, value: 0, 'aria-label': `Uploading ${name}` })
  const label = h('span.upload-label', {}, `Uploading ${name}…`)
  const item = h('li', {}, bar, label)
  $('#uploads').append(item)
  return {
    update: (fraction) => {
      bar.value = fraction
      label.textContent = `Uploading ${name}… ${Math.round(fraction * 100)}%`
    },
    done: () => item.remove(),
  }
}
