// Parley's web client: the public REST API and /ws through the SDK (/parley-client.js), no framework, no build
// step of its own. This module signs in and out and wires the others: session.js (the SDK's client), state.js
// (what is shared), list.js (the conversation list), view.js (the open conversation), menu.js (a message's menu
// and reactions), thread.js, composer.js, send.js (the outbox), dialogs.js, message-dialogs.js and events.js
// (live events).
import { ApiError } from './api.js'
import { $ } from './dom.js'
import { onEvent } from './events.js'
import { showErrors } from './forms.js'
import { loadConversations } from './list.js'
import { clearPending, loadPending, settled } from './send.js'
import { login, logout, register, restore, session } from './session.js'
import { dropNotifications, setUpNotifications } from './notifications.js'
import { closeConversation, openConversation, upsert } from './view.js'
import { api, avatar, links, nameOf, state } from './state.js'
import './dialogs.js'
import './composer.js'
import './conversation-menu.js'
import './message-search.js'

// ---------- session ----------

session.onStart = (client) => {
  // One event at a time, in order, even when handling one needs a request.
  let queue = Promise.resolve()
  client.on('event', (e) => { queue = queue.then(() => onEvent(e)).catch((err) => console.error(err)) })
  client.on('state', ({ state: s }) => {
    if (s === 'offline') $('#banner').hidden = false
    else if (s !== 'connecting') $('#banner').hidden = true
  })
  // Sends an earlier page left in the outbox land after this one connects; mine land in sendMessage().
  client.on('sent', ({ entry, message }) => { settled(entry.client_id); upsert(message) })
  client.on('failed', ({ entry }) => settled(entry.client_id))
}

session.onUser = (user) => {
  if (!user) return signedOut()
  const first = !state.me
  state.me = user
  state.users.set(user.id, user)
  $('#me').textContent = nameOf(user)
  $('#me-avatar').replaceChildren(avatar(user.avatar_url, nameOf(user)))
  if (first) signedIn()
}

async function signedIn() {
  $('#auth').hidden = true
  $('#chat').hidden = false
  const client = api.client
  // What the conversations' state includes is followed before the socket opens: its first resume names them.
  await Promise.all([loadConversations(), loadPending(client)])
  if (api.client !== client) return
  client.connect()
  // A notification clicked while no page was open opened this one at its conversation.
  const wanted = /^#conversation=([\w-]+)$/.exec(location.hash)?.[1]
  if (wanted) {
    history.replaceState(null, '', location.pathname)
    openConversation(wanted)
  }
  setUpNotifications(openConversation).catch((err) => { $('#notifications-status').textContent = `Notifications are not available: ${err.message}` })
}

function signedOut() {
  links.clear()
  state.me = null
  for (const map of [state.conversations, state.presence, state.users, state.readers, state.myRead]) map.clear()
  closeConversation()
  clearPending()
  for (const d of document.querySelectorAll('dialog[open]')) d.close()
  $('#chat').hidden = true
  $('#banner').hidden = true
  $('#auth').hidden = false
  // Whoever signed up in this tab comes back to sign in, not to sign up again.
  showTab('login')
  $('#login-username').focus()
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
formHandler($('#login-form'), 'login', (f) => login(f.username ?? '', f.password ?? ''))
formHandler($('#register-form'), 'register', (f) => register(f))
$('#logout').addEventListener('click', async () => {
  await dropNotifications()
  await logout()
})
$('#back').addEventListener('click', closeConversation)

// ---------- start ----------

restore().then((resumed) => resumed || signedOut(), () => signedOut())
