// Parley's web client: the public REST API and /ws only, no framework, no build step. This module signs in
// and out and wires the others: state.js (what is shared), list.js (the conversation list), view.js (the open
// conversation), menu.js (a message's menu and reactions), thread.js, composer.js, dialogs.js,
// message-dialogs.js and events.js (live frames).
import { ApiError } from './api.js'
import { $ } from './dom.js'
import { onEvent } from './events.js'
import { showErrors } from './forms.js'
import { loadConversations } from './list.js'
import { closeConversation } from './view.js'
import { api, avatar, hooks, links, live, nameOf, state } from './state.js'
import './dialogs.js'
import './composer.js'
import './conversation-menu.js'
import './message-search.js'

hooks.onEvent = onEvent
hooks.onStatus = (status) => { $('#banner').hidden = status === 'open' }

// ---------- session ----------

api.onSession = (user) => {
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
  await loadConversations()
  live.start()
}

function signedOut() {
  live.stop()
  links.clear()
  state.me = null
  for (const map of [state.conversations, state.presence, state.users, state.readers, state.myRead]) map.clear()
  closeConversation()
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
formHandler($('#login-form'), 'login', (f) => api.login(f.username ?? '', f.password ?? ''))
formHandler($('#register-form'), 'register', (f) => api.register(f))
$('#logout').addEventListener('click', () => api.logout())
$('#back').addEventListener('click', closeConversation)

// ---------- start ----------

if (api.hasStoredSession) api.refresh().catch(() => signedOut())
else signedOut()
