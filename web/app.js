// Parley's web client: the public REST API and /ws only, no framework, no build step.
import { Api, ApiError } from './api.js'
import { $, day, h, randomId, time } from './dom.js'
import { FileLinks } from './files.js'
import { Live } from './live.js'

const api = new Api()
const links = new FileLinks(api)
const state = {
  me: null,
  /** id → Conversation */
  conversations: new Map(),
  /** user id → { is_online, last_seen } from participants and presence frames */
  presence: new Map(),
  /** user id → public User, the freshest seen: names and avatars of members and past members */
  users: new Map(),
  /** the open conversation */
  open: null,
  /** its messages, by id, and in seq order */
  messages: new Map(),
  hasOlder: false,
  /** conversation id → Map(user id → the highest seq they have read), from receipts and read frames */
  readers: new Map(),
  /** conversation id → highest seq I marked read */
  myRead: new Map(),
  /** conversation id → Map(user id → timer) */
  typing: new Map(),
  editing: null,
}

const live = new Live(api, { onEvent, onStatus })

// ---------- session ----------

api.onSession = (user) => {
  if (!user) return signedOut()
  const first = !state.me
  state.me = user
  state.users.set(user.id, user)
  $('#me').textContent = user.display_name || user.username
  $('#me-avatar').replaceChildren(avatar(user.avatar_url, user.display_name || user.username))
  if (first) signedIn()
}

async function signedIn() {
  $('#auth').hidden = true
  $('#chat').hidden = false
  await loadConversations()
  live.start()
}

function signedOut() {
  live.stop()
  links.clear()
  state.me = null
  for (const map of [state.conversations, state.presence, state.users, state.readers, state.myRead]) map.clear()
  state.open = null
  live.seqs.clear()
  live.seen.clear()
  for (const d of document.querySelectorAll('dialog[open]')) d.close()
  $('#chat').hidden = true
  $('#banner').hidden = true
  $('#auth').hidden = false
  // Whoever signed up in this tab comes back to sign in, not to sign up again.
  showTab('login')
  $('#login-username').focus()
}

function onStatus(status) {
  $('#banner').hidden = status === 'open'
}

// ---------- sign in / register ----------

function showTab(name) {
  for (const tab of ['login', 'register']) {
    $(`#tab-${tab}`).setAttribute('aria-selected', String(tab === name))
    $(`#${tab}-form`).hidden = tab !== name
  }
}
$('#tab-login').addEventListener('click', () => showTab('login'))
$('#tab-register').addEventListener('click', () => showTab('register'))

const friendly = {
  password: 'Use 8 or more characters with an upper-case letter, a lower-case letter and a digit',
  username: 'Use 3–32 letters, digits or underscores',
}

/** The API's validation details ("/password must …") shown next to their fields. */
function showErrors(form, prefix, err) {
  for (const p of form.querySelectorAll('.field-error, .form-error')) p.textContent = ''
  for (const input of form.querySelectorAll('input')) input.removeAttribute('aria-invalid')
  const place = (field, text) => {
    const slot = $(`#${prefix}-${field}-error`)
    if (!slot) return false
    slot.textContent = text
    $(`#${prefix}-${field}`).setAttribute('aria-invalid', 'true')
    return true
  }
  let placed = false
  for (const detail of err.details ?? []) {
    const m = /^\/(\w+)\s+(.*)$/.exec(detail)
    if (!m) continue
    const [, field, message] = m
    const text = /pattern|format/.test(message) && friendly[field] ? friendly[field] : `${field.replace('_', ' ')} ${message}`
    placed = place(field, text) || placed
  }
  if (err.code === 'USERNAME_TAKEN' || (err.status === 409 && /username/i.test(err.message))) placed = place('username', err.message)
  else if (err.status === 409 && /email/i.test(err.message)) placed = place('email', err.message)
  else if (err.code === 'WRONG_PASSWORD' || err.code === 'CURRENT_PASSWORD_REQUIRED') placed = place('current_password', err.message)
  if (!placed) form.querySelector('.form-error').textContent = err.message || 'Something went wrong'
}

function formHandler(form, prefix, action) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault()
    const button = form.querySelector('button[type=submit]')
    button.disabled = true
    try {
      const fields = {}
      for (const input of form.querySelectorAll('input')) if (input.value !== '') fields[input.name] = input.value
      await action(fields)
      form.reset()
      showErrors(form, prefix, {})
    } catch (err) {
      showErrors(form, prefix, err instanceof ApiError ? err : { message: 'Network error: try again' })
    } finally {
      button.disabled = false
    }
  })
}
formHandler($('#login-form'), 'login', (f) => api.login(f.username ?? '', f.password ?? ''))
formHandler($('#register-form'), 'register', (f) => api.register(f))
$('#logout').addEventListener('click', () => api.logout())

// ---------- conversations ----------

const activity = (c) => c.last_message?.created_at ?? c.updated_at ?? c.created_at
const others = (c) => c.participants.filter((p) => p.user.id !== state.me.id).map((p) => p.user)
const title = (c) => (c.is_group ? c.name : others(c).map((u) => u.display_name || u.username).join(', ') || 'Just you')
const userName = (id) => {
  const u = state.users.get(id)
  return u ? u.display_name || u.username : 'Someone'
}
/**
 * A system message in words, from its ids (`system`) with the names known now, so that a name is shown as its
 * owner has it today; the server's own words when it has no ids or names are still loading.
 */
function systemText(m) {
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
    default: return m.content
  }
}
const initials = (name) => (name || '?').split(/\s+/).filter(Boolean).slice(0, 2).map((w) => [...w][0].toUpperCase()).join('') || '?'
/** A picture from /files (by a signed URL, as <img> sends no header), or initials. */
function avatar(url, name) {
  if (!url) return h('span.avatar', { 'aria-hidden': 'true' }, initials(name))
  const img = h('img.avatar', { alt: '' })
  links.show(img, 'src', url)
  return img
}
const convAvatar = (c) => (c.is_group ? avatar(c.avatar_url, c.name) : avatar(others(c)[0]?.avatar_url, title(c)))
const size = (n) => (n == null ? '' : n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`)
const isAdmin = (c) => c.participants.some((p) => p.user.id === state.me.id && p.role === 'admin')
const isOnline = (c) => !c.is_group && others(c).some((u) => state.presence.get(u.id)?.is_online)

function addConversation(c) {
  state.conversations.set(c.id, c)
  if (state.open?.id === c.id) state.open = c
  for (const p of c.participants) rememberUser(p.user)
  live.known(c.id, c.last_seq)
}

/**
 * The freshest copy of a user wins everywhere: a new name or avatar seen in one conversation's members
 * replaces the old one in every other. (Presence comes from frames once known; is_online here is a first guess.)
 */
function rememberUser(u) {
  const known = state.users.get(u.id)
  state.users.set(u.id, { ...known, ...u })
  if (!state.presence.has(u.id)) state.presence.set(u.id, { is_online: u.is_online })
  if (!known || (known.display_name === u.display_name && known.avatar_url === u.avatar_url)) return
  const profile = { username: u.username, display_name: u.display_name, avatar_url: u.avatar_url }
  for (const c of state.conversations.values()) for (const p of c.participants) if (p.user.id === u.id) Object.assign(p.user, profile)
  for (const el of document.querySelectorAll(`#message-list .sender[data-user="${CSS.escape(u.id)}"]`)) el.textContent = userName(u.id)
}

/**
 * No frame announces profile changes, so a user's name and avatar are fetched again when they come
 * online; conversations bring their members' too (on open and on participant frames).
 */
async function refreshUser(id) {
  const u = await api.get(`/users/${id}`).catch(() => null)
  if (!u) return
  rememberUser(u)
  renderList()
  renderSettings()
  renderReceipts()
}

async function loadConversations() {
  const list = await api.get('/conversations?limit=100')
  for (const c of list) addConversation(c)
  renderList()
}

const loading = new Map()
/** A conversation this client has not seen yet (a new chat, or one it was added to). */
function fetchConversation(id) {
  if (!loading.has(id)) {
    loading.set(id, api.get(`/conversations/${id}`).then((c) => {
      addConversation(c)
      renderList()
      return c
    }).catch(() => null).finally(() => loading.delete(id)))
  }
  return loading.get(id)
}

function preview(c) {
  const typers = [...(state.typing.get(c.id)?.keys() ?? [])]
  if (typers.length) return h('span.preview.typing-preview', {}, 'typing…')
  const m = c.last_message
  if (!m) return h('span.preview', {}, 'No messages yet')
  const who = m.message_type === 'system' ? '' : m.sender_id === state.me.id ? 'You: ' : c.is_group ? `${userName(m.sender_id)}: ` : ''
  const text = m.message_type === 'system' ? systemText(m) : m.message_type === 'text' || m.is_deleted ? m.content : `[${m.message_type}] ${m.file_name ?? ''}`
  return h(`span.preview${m.is_deleted ? '.deleted' : ''}`, {}, who, text)
}

function renderList() {
  const list = [...state.conversations.values()].sort((a, b) => activity(b).localeCompare(activity(a)))
  $('#no-conversations').hidden = list.length > 0
  $('#conversations').replaceChildren(...list.map((c) => {
    const online = isOnline(c)
    const name = title(c)
    const unread = c.unread_count > 0 && state.open?.id !== c.id
    return h('li', {},
      h('button.conversation', {
        type: 'button',
        dataset: { id: c.id },
        'aria-current': state.open?.id === c.id ? 'true' : undefined,
        onclick: () => openConversation(c.id),
      },
      h('span.pic', {}, convAvatar(c),
        h(`span.dot${online ? '.online' : ''}`, { role: 'img', 'aria-label': c.is_group ? 'group' : online ? 'online' : 'offline', hidden: c.is_group })),
      h('span.name', {}, name),
      h('time.when', { datetime: activity(c) }, time(activity(c))),
      preview(c),
      unread ? h('span.badge', { 'aria-label': `${c.unread_count} unread` }, String(c.unread_count)) : null))
  }))
  renderHeader()
}

function renderHeader() {
  const c = state.open
  if (!c) return
  $('#conv-title').textContent = title(c)
  $('#conv-avatar').replaceChildren(convAvatar(c))
  $('#group-settings').hidden = !c.is_group
  const dot = $('#conv-dot')
  dot.hidden = c.is_group
  const online = isOnline(c)
  dot.className = `dot${online ? ' online' : ''}`
  const other = others(c)[0]
  const n = c.participants.length
  $('#conv-status').textContent = c.is_group ? `${n} member${n === 1 ? '' : 's'}` : online ? 'online' : lastSeen(other && state.presence.get(other.id)?.last_seen)
}

const lastSeen = (iso) => (iso ? `last seen ${day(iso)} ${time(iso)}` : 'offline')

// ---------- a conversation ----------

async function openConversation(id) {
  const c = state.conversations.get(id) ?? (await fetchConversation(id))
  if (!c) return
  state.open = c
  state.messages = new Map()
  state.editing = null
  document.body.classList.add('show-conversation')
  $('#composer').hidden = false
  $('#composer-input').value = ''
  renderList()
  renderTyping()
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
  renderMessages()
  scrollToBottom()
  markRead()
  $('#composer-input').focus()
  await loadReceipts(c)
}

async function loadOlder() {
  const c = state.open
  const oldest = sorted()[0]
  if (!c || !oldest || !state.hasOlder || state.loadingOlder) return
  state.loadingOlder = true
  try {
    const page = await api.get(`/conversations/${c.id}/messages?limit=50&before=${oldest.id}`)
    await links.prefetch(page.map((m) => m.file_url))
    if (state.open !== c) return
    for (const m of page) if (!state.messages.has(m.id)) state.messages.set(m.id, m)
    state.hasOlder = page.length === 50
    const box = $('#messages')
    const fromBottom = box.scrollHeight - box.scrollTop
    renderMessages()
    box.scrollTop = box.scrollHeight - fromBottom
  } finally {
    state.loadingOlder = false
  }
}
$('#load-older').addEventListener('click', loadOlder)
$('#messages').addEventListener('scroll', (e) => { if (e.target.scrollTop < 40) loadOlder() })

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

function readUpTo(conversationId, userId, seq) {
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

function renderReceipts() {
  if (!state.open) return
  for (const el of document.querySelectorAll('#message-list .ticks')) setTicks(el)
  renderReadBy()
}

/** In a group, who has read my latest message is spelled out under it (earlier ones: on the ticks' tooltip). */
function renderReadBy() {
  for (const el of document.querySelectorAll('#message-list .read-by')) el.remove()
  const last = state.open?.is_group && ownMessages().at(-1)
  if (!last) return
  const names = readersOf(last.seq)
  const item = document.querySelector(`#message-list [data-id="${CSS.escape(last.id)}"]`)
  if (item && names.length) item.querySelector('.meta').after(h('p.read-by', {}, `Read by ${names.join(', ')}`))
}

/** Marks the newest message from someone else read, when the page shows it. */
function markRead() {
  const c = state.open
  if (!c || document.visibilityState !== 'visible') return
  const latest = sorted().filter((m) => m.sender_id !== state.me.id).at(-1)
  if (!latest || latest.seq <= (state.myRead.get(c.id) ?? -1)) {
    if (c.unread_count) { c.unread_count = 0; renderList() }
    return
  }
  state.myRead.set(c.id, latest.seq)
  c.unread_count = 0
  renderList()
  api.post(`/messages/${latest.id}/read`).catch(() => state.myRead.delete(c.id))
}
document.addEventListener('visibilitychange', markRead)

const sorted = () => [...state.messages.values()].sort((a, b) => a.seq - b.seq)

function renderMessages() {
  const items = []
  let lastDay = null
  for (const m of sorted()) {
    const d = day(m.created_at)
    if (d !== lastDay) items.push(h('li.day', { role: 'separator' }, d))
    lastDay = d
    items.push(messageItem(m))
  }
  $('#message-list').replaceChildren(...items)
  $('#load-older').hidden = !state.hasOlder
  renderReadBy()
}

function messageItem(m) {
  if (m.message_type === 'system') return h('li.system', { dataset: { id: m.id } }, systemText(m))
  const own = m.sender_id === state.me.id
  const c = state.open
  const body = m.is_deleted
    ? h('p.text.deleted', {}, m.content)
    : state.editing === m.id ? editor(m) : m.content ? h('p.text', {}, m.content) : null
  let media = null
  if (!m.is_deleted && m.file_url) {
    const name = m.file_name ?? 'file'
    const img = m.message_type === 'image' ? h('img', { alt: name }) : null
    media = img
      ? h('a.media', { target: '_blank', rel: 'noopener', 'aria-label': `Open image ${name}`, onclick: (e) => viewImage(e, m) }, img)
      : m.message_type === 'video'
        ? h('video.media', { controls: true, preload: 'metadata', 'aria-label': name })
        : h('a.file', { download: name }, `📎 ${name}`, h('span.size', {}, ` ${size(m.file_size)}`))
    links.show(media, media.tagName === 'A' ? 'href' : 'src', m.file_url)
    if (img) links.show(img, 'src', m.file_url)
  }
  const meta = h('span.meta', {},
    m.is_edited && !m.is_deleted ? h('span.edited', {}, 'edited') : null,
    h('time', { datetime: m.created_at }, time(m.created_at)),
    own && !m.is_deleted ? h('span.ticks', { dataset: { seq: String(m.seq) } }) : null)
  const ticks = meta.querySelector('.ticks')
  if (ticks) setTicks(ticks)
  const actions = own && !m.is_deleted && state.editing !== m.id
    ? h('span.actions', {},
      m.message_type === 'text' ? h('button', { type: 'button', 'aria-label': 'Edit message', onclick: () => startEdit(m.id) }, 'Edit') : null,
      h('button', { type: 'button', 'aria-label': 'Delete message', onclick: (e) => confirmDelete(e.currentTarget, m.id) }, 'Delete'))
    : null
  return h(`li.message${own ? '.own' : '.theirs'}`, { dataset: { id: m.id } },
    !own && c.is_group ? h('span.sender', { dataset: { user: m.sender_id } }, userName(m.sender_id)) : null,
    media, body, meta, actions)
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

function startEdit(id) {
  const previous = state.editing
  state.editing = id
  if (previous) replaceItem(previous)
  replaceItem(id)
}

function confirmDelete(button, id) {
  if (button.dataset.confirm) {
    api.del(`/messages/${id}`).then(upsert).catch((err) => { button.textContent = err.message })
    return
  }
  button.dataset.confirm = '1'
  button.textContent = 'Confirm delete'
  button.setAttribute('aria-label', 'Confirm delete')
}

function replaceItem(id) {
  const el = document.querySelector(`#message-list [data-id="${CSS.escape(id)}"]`)
  const m = state.messages.get(id)
  if (el && m) el.replaceWith(messageItem(m))
  renderReadBy()
}

const nearBottom = () => { const b = $('#messages'); return b.scrollHeight - b.scrollTop - b.clientHeight < 80 }
const scrollToBottom = () => { const b = $('#messages'); b.scrollTop = b.scrollHeight }

/**
 * A message from a frame or an answer: added or updated in place, never shown twice. One with a file waits
 * for its URL (`ready` once asked), so that it renders with it; a newer copy meanwhile wins by updated_at.
 */
function upsert(m, ready = false) {
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
  const stick = nearBottom() || m.sender_id === state.me.id
  const last = sorted().at(-2)
  if (last && last.seq > m.seq) renderMessages()
  else {
    const list = $('#message-list')
    if (!last || day(last.created_at) !== day(m.created_at)) list.append(h('li.day', { role: 'separator' }, day(m.created_at)))
    list.append(messageItem(m))
    renderReadBy()
  }
  if (stick) scrollToBottom()
  markRead()
}

// ---------- composing ----------

const input = $('#composer-input')
let typingSent = 0
let typingTimer = null

function typing(isTyping) {
  const c = state.open
  if (!c) return
  clearTimeout(typingTimer)
  if (isTyping) {
    if (Date.now() - typingSent > 3000) {
      typingSent = Date.now()
      live.send({ type: 'typing', conversation_id: c.id, is_typing: true })
    }
    typingTimer = setTimeout(() => typing(false), 4000)
  } else if (typingSent) {
    typingSent = 0
    live.send({ type: 'typing', conversation_id: c.id, is_typing: false })
  }
}

input.addEventListener('input', () => {
  input.style.height = 'auto'
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`
  typing(input.value.length > 0)
})
input.addEventListener('keydown', (e) => {
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
  input.value = ''
  input.style.height = 'auto'
  const clientId = randomId()
  for (let attempt = 0; ; attempt++) {
    try {
      upsert(await api.post('/messages', { conversation_id: c.id, content, client_id: clientId }))
      return
    } catch (err) {
      // A network failure is retried with the same client_id: the server keeps the first send only.
      if (err instanceof ApiError || attempt >= 2) {
        error.textContent = `Not sent: ${err.message}`
        if (!input.value) input.value = content
        return
      }
    }
  }
})

function renderTyping() {
  const c = state.open
  const typers = c ? [...(state.typing.get(c.id)?.keys() ?? [])].map(userName) : []
  $('#typing').textContent = typers.length ? `${typers.join(', ')} ${typers.length > 1 ? 'are' : 'is'} typing…` : ''
}

function setTyping({ conversation_id: id, user_id: user, is_typing: on }) {
  const map = state.typing.get(id) ?? new Map()
  state.typing.set(id, map)
  clearTimeout(map.get(user))
  if (on) map.set(user, setTimeout(() => setTyping({ conversation_id: id, user_id: user, is_typing: false }), 7000))
  else map.delete(user)
  renderTyping()
  renderList()
}

// ---------- new chat ----------

const search = $('#search')
$('#new-chat').addEventListener('click', () => {
  search.hidden = !search.hidden
  $('#new-chat').setAttribute('aria-expanded', String(!search.hidden))
  if (!search.hidden) $('#search-input').focus()
})
search.addEventListener('submit', (e) => e.preventDefault())
search.addEventListener('keydown', (e) => { if (e.key === 'Escape') closeSearch() })
function closeSearch() {
  search.hidden = true
  $('#new-chat').setAttribute('aria-expanded', 'false')
  $('#search-input').value = ''
  $('#search-results').replaceChildren()
  $('#new-chat').focus()
}
let searchTimer
$('#search-input').addEventListener('input', (e) => {
  clearTimeout(searchTimer)
  const query = e.target.value.trim()
  searchTimer = setTimeout(async () => {
    if (!query) return $('#search-results').replaceChildren()
    const users = await api.get(`/users?query=${encodeURIComponent(query)}&limit=10`).catch(() => [])
    if ($('#search-input').value.trim() !== query) return
    const found = users.filter((u) => u.id !== state.me.id)
    $('#search-results').replaceChildren(...(found.length
      ? found.map((u) => h('li', {}, h('button', { type: 'button', onclick: () => startChat(u) },
        h('span.name', {}, u.display_name || u.username), ' ', h('span.username', {}, `@${u.username}`))))
      : [h('li.empty', {}, 'Nobody found')]))
  }, 200)
})

async function startChat(user) {
  const c = await api.post('/conversations', { participant_ids: [user.id], is_group: false })
  if (!state.conversations.has(c.id)) addConversation(c)
  closeSearch()
  await openConversation(c.id)
}

$('#back').addEventListener('click', () => {
  document.body.classList.remove('show-conversation')
  state.open = null
  $('#composer').hidden = true
  $('#conv-title').textContent = 'Select a conversation'
  $('#conv-status').textContent = ''
  $('#message-list').replaceChildren()
  renderList()
})

// ---------- live events ----------

async function onEvent(frame) {
  const { type, conversation_id: id, data } = frame
  if (type === 'presence') {
    const was = state.presence.get(data.user_id)?.is_online
    state.presence.set(data.user_id, { is_online: data.is_online, last_seen: data.last_seen })
    if (data.is_online && !was) refreshUser(data.user_id)
    return renderList()
  }
  if (type === 'typing_indicator') return setTyping(data)
  if (!id || typeof frame.seq !== 'number') return
  if (!state.conversations.has(id)) {
    // Loaded after the event: its state already includes it.
    if (type !== 'participant_removed') await fetchConversation(id)
    return
  }
  const c = state.conversations.get(id)
  switch (type) {
    case 'new_message':
      if (data.sender_id !== state.me.id && state.open?.id !== id) c.unread_count += 1
      if (data.sender_id) setTyping({ conversation_id: id, user_id: data.sender_id, is_typing: false })
      upsert(data)
      break
    case 'message_edited':
    case 'message_deleted':
      upsert(data)
      break
    case 'message_read':
      if (data.user_id === state.me.id) {
        if (state.open?.id !== id) { c.unread_count = 0; renderList() }
      } else {
        const m = state.messages.get(data.message_id) ?? (state.open?.id === id ? await api.get(`/messages/${data.message_id}`).catch(() => null) : null)
        if (m) readUpTo(id, data.user_id, m.seq)
      }
      break
    case 'participant_removed':
      if (data.user_id === state.me.id) {
        state.conversations.delete(id)
        if (state.open?.id === id) $('#back').click()
        renderList()
        break
      }
    // falls through: someone else left or was removed
    case 'participant_added':
    case 'conversation_updated': {
      const fresh = type === 'conversation_updated' ? data : await api.get(`/conversations/${id}`).catch(() => null)
      if (fresh) applyConversation(c, fresh)
      renderList()
      renderSettings()
      break
    }
  }
}

function applyConversation(c, fresh) {
  Object.assign(c, fresh, { last_message: c.last_message, unread_count: c.unread_count })
  for (const p of c.participants) rememberUser(p.user)
  if (state.open?.id === c.id) {
    for (const el of document.querySelectorAll('#message-list .sender')) el.textContent = userName(el.dataset.user)
    renderReceipts()
  }
}

// ---------- attachments ----------

$('#attach').addEventListener('change', async (e) => {
  const file = e.target.files[0]
  const c = state.open
  e.target.value = ''
  if (!file || !c) return
  const error = $('#composer .form-error')
  error.textContent = ''
  const caption = input.value.trim()
  const query = new URLSearchParams({ conversation_id: c.id })
  if (caption) query.set('caption', caption)
  const progress = uploadProgress(file.name)
  try {
    upsert(await api.upload(`/messages/upload?${query}`, file, progress.update))
    if (caption && input.value.trim() === caption) { input.value = ''; typing(false) }
  } catch (err) {
    error.textContent = `Not sent: ${err.message}`
  } finally {
    progress.done()
  }
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

// ---------- image viewer ----------

/** A click on a preview shows the image at full size (up to the window's); a modified click opens a tab. */
function viewImage(e, m) {
  if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return
  e.preventDefault()
  const viewer = $('#image-dialog')
  // A URL good for a while yet: the preview's may be about to expire.
  const name = m.file_name ?? 'image'
  links.show($('#viewer-img'), 'src', m.file_url)
  $('#viewer-img').alt = name
  $('#viewer-title').textContent = name
  links.show($('#viewer-open'), 'href', m.file_url)
  showDialog(viewer, e.currentTarget)
  viewer.querySelector('.close').focus()
}

// ---------- dialogs ----------

for (const d of document.querySelectorAll('dialog')) {
  for (const b of d.querySelectorAll('.close')) b.addEventListener('click', () => d.close())
  // Esc closes a modal <dialog> by itself; focus goes back to what opened it.
  d.addEventListener('close', () => d.opener?.focus())
}
function showDialog(d, opener) {
  for (const p of d.querySelectorAll('.field-error, .form-error')) p.textContent = ''
  d.opener = opener
  d.showModal()
}

/** A people search that offers the users `exclude()` does not hold; a click picks one. */
function peopleSearch(field, results, exclude, pick) {
  let timer
  field.addEventListener('keydown', (e) => { if (e.key === 'Enter') e.preventDefault() })
  field.addEventListener('input', () => {
    clearTimeout(timer)
    const query = field.value.trim()
    timer = setTimeout(async () => {
      if (!query) return results.replaceChildren()
      const users = await api.get(`/users?query=${encodeURIComponent(query)}&limit=10`).catch(() => [])
      if (field.value.trim() !== query) return
      const found = users.filter((u) => u.id !== state.me.id && !exclude().has(u.id))
      results.replaceChildren(...(found.length
        ? found.map((u) => h('li', {}, h('button', {
          type: 'button',
          onclick: () => { field.value = ''; results.replaceChildren(); field.focus(); pick(u) },
        }, avatar(u.avatar_url, u.display_name || u.username), h('span.name', {}, u.display_name || u.username), ' ', h('span.username', {}, `@${u.username}`))))
        : [h('li.empty', {}, 'Nobody found')]))
    }, 200)
  })
}

// ---------- new group ----------

const picked = new Map()
function renderPicked() {
  $('#group-picked').replaceChildren(...[...picked.values()].map((u) => {
    const name = u.display_name || u.username
    return h('li', {}, name, h('button', { type: 'button', 'aria-label': `Remove ${name}`, onclick: () => { picked.delete(u.id); renderPicked() } }, '×'))
  }))
}
$('#new-group').addEventListener('click', (e) => {
  picked.clear()
  renderPicked()
  $('#group-form').reset()
  $('#group-results').replaceChildren()
  showDialog($('#group-dialog'), e.currentTarget)
  $('#group-name').focus()
})
peopleSearch($('#group-search'), $('#group-results'), () => new Set(picked.keys()), (u) => { picked.set(u.id, u); renderPicked() })
$('#group-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const name = $('#group-name').value.trim()
  const error = $('#group-form .form-error')
  error.textContent = ''
  if (!name) { error.textContent = 'Give the group a name'; return }
  try {
    const c = await api.post('/conversations', { is_group: true, name, participant_ids: [...picked.keys()] })
    if (!state.conversations.has(c.id)) addConversation(c)
    $('#group-dialog').close()
    await openConversation(c.id)
  } catch (err) {
    error.textContent = err.message
  }
})

// ---------- group settings ----------

const settings = $('#settings-dialog')
const settingsError = (text) => { $('#settings-dialog .form-error').textContent = text }
$('#group-settings').addEventListener('click', (e) => {
  if (!state.open?.is_group) return
  showDialog(settings, e.currentTarget)
  renderSettings(true)
})

function renderSettings(fresh = false) {
  if (!settings.open) return
  const c = state.open
  if (!c?.is_group || !state.conversations.has(c.id)) return settings.close()
  const admin = isAdmin(c)
  const name = $('#settings-name')
  if (fresh || document.activeElement !== name) name.value = c.name
  name.readOnly = !admin
  $('#rename').hidden = !admin
  $('#settings-avatar').replaceChildren(convAvatar(c))
  $('label[for=settings-avatar-input]').hidden = !admin
  $('#settings-avatar-input').disabled = !admin
  $('#settings-add').hidden = !admin
  const members = [...c.participants].sort((a, b) => (a.role === b.role ? 0 : a.role === 'admin' ? -1 : 1))
  $('#settings-members').replaceChildren(...members.map((p) => {
    const who = p.user.display_name || p.user.username
    const me = p.user.id === state.me.id
    return h('li', {}, avatar(p.user.avatar_url, who), h('span.name', {}, me ? `${who} (you)` : who), h('span.role', {}, p.role),
      admin && !me ? h('span.member-actions', {},
        h('button', { type: 'button', 'aria-label': p.role === 'admin' ? `Make ${who} a member` : `Make ${who} an admin`, onclick: () => groupAction(c, () => api.patch(`/conversations/${c.id}/participants/${p.user.id}`, { role: p.role === 'admin' ? 'member' : 'admin' })) }, p.role === 'admin' ? 'Demote' : 'Promote'),
        h('button.danger', { type: 'button', 'aria-label': `Remove ${who}`, onclick: () => groupAction(c, () => api.del(`/conversations/${c.id}/participants/${p.user.id}`)) }, 'Remove'))
        : null)
  }))
}

/** A change to a group, then its fresh state (the live frame brings it too; whichever comes first wins). */
async function groupAction(c, action) {
  settingsError('')
  try {
    const answer = await action()
    const fresh = answer?.participants ? answer : await api.get(`/conversations/${c.id}`)
    applyConversation(c, fresh)
    renderList()
    renderSettings()
  } catch (err) {
    settingsError(err.message)
  }
}
$('#rename-form').addEventListener('submit', (e) => {
  e.preventDefault()
  const c = state.open
  const name = $('#settings-name').value.trim()
  if (!c || !name) return settingsError('Give the group a name')
  groupAction(c, () => api.patch(`/conversations/${c.id}`, { name }))
})
$('#settings-avatar-input').addEventListener('change', (e) => {
  const file = e.target.files[0]
  e.target.value = ''
  const c = state.open
  if (file && c) groupAction(c, () => api.upload(`/conversations/${c.id}/avatar`, file))
})
peopleSearch($('#settings-search'), $('#settings-results'), () => new Set(state.open?.participants.map((p) => p.user.id) ?? []),
  (u) => { const c = state.open; if (c) groupAction(c, () => api.post(`/conversations/${c.id}/participants`, { user_ids: [u.id] })) })
$('#leave').addEventListener('click', async () => {
  const c = state.open
  if (!c) return
  try {
    await api.post(`/conversations/${c.id}/leave`)
    state.conversations.delete(c.id)
    settings.close()
    $('#back').click()
  } catch (err) {
    settingsError(err.message)
  }
})

// ---------- profile ----------

const profile = $('#profile-dialog')
function setMe(user) {
  state.me = { ...state.me, ...user }
  state.users.set(state.me.id, state.me)
  for (const c of state.conversations.values()) for (const p of c.participants) if (p.user.id === state.me.id) Object.assign(p.user, user)
  const name = state.me.display_name || state.me.username
  $('#me').textContent = name
  $('#me-avatar').replaceChildren(avatar(state.me.avatar_url, name))
  $('#profile-avatar').replaceChildren(avatar(state.me.avatar_url, name))
}
const resetDelete = () => {
  const b = $('#delete-account')
  delete b.dataset.confirm
  b.textContent = 'Delete account'
  b.removeAttribute('aria-label')
}
$('#profile-open').addEventListener('click', (e) => {
  $('#profile-display_name').value = state.me.display_name ?? ''
  $('#password-form').reset()
  resetDelete()
  setMe({})
  showDialog(profile, e.currentTarget)
})
$('#name-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  $('#profile-display_name-error').textContent = ''
  try {
    setMe(await api.patch('/users/me', { display_name: $('#profile-display_name').value.trim() }))
  } catch (err) {
    $('#profile-display_name-error').textContent = err.message
  }
})
$('#profile-avatar-input').addEventListener('change', async (e) => {
  const file = e.target.files[0]
  e.target.value = ''
  $('#profile-avatar-error').textContent = ''
  if (!file) return
  try {
    setMe(await api.upload('/users/me/avatar', file))
  } catch (err) {
    $('#profile-avatar-error').textContent = err.message
  }
})
$('#password-form').addEventListener('submit', async (e) => {
  e.preventDefault()
  const form = e.currentTarget
  try {
    await api.patch('/users/me', { password: $('#profile-password').value, current_password: $('#profile-current_password').value })
    form.reset()
    showErrors(form, 'profile', {})
    form.querySelector('.form-error').textContent = 'Password changed'
  } catch (err) {
    showErrors(form, 'profile', err instanceof ApiError ? err : { message: 'Network error: try again' })
  }
})
$('#delete-account').addEventListener('click', async (e) => {
  const b = e.currentTarget
  if (!b.dataset.confirm) {
    b.dataset.confirm = '1'
    b.textContent = 'Yes, delete my account'
    b.setAttribute('aria-label', 'Confirm delete account')
    return
  }
  try {
    await api.del('/users/me')
    api.end()
  } catch (err) {
    $('#delete-error').textContent = err.message
  }
})

// ---------- start ----------

if (api.hasStoredSession) api.refresh().catch(() => signedOut())
else signedOut()
