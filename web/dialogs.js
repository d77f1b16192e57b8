// Dialogs and searches: new chat, new group, group settings, profile.
import { ApiError } from './api.js'
import { $, h } from './dom.js'
import { addConversation, convAvatar, renderList } from './list.js'
import { applyConversation } from './events.js'
import { showErrors } from './forms.js'
import { endSession } from './session.js'
import { api, avatar, isAdmin, nameOf, state } from './state.js'
import { closeConversation, openConversation } from './view.js'

// ---------- dialogs ----------

for (const d of document.querySelectorAll('dialog')) {
  for (const b of d.querySelectorAll('.close')) b.addEventListener('click', () => d.close())
  // Esc closes a modal <dialog> by itself; focus goes back to what opened it.
  d.addEventListener('close', () => d.opener?.focus())
}
export function showDialog(d, opener) {
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
        }, avatar(u.avatar_url, nameOf(u)), h('span.name', {}, nameOf(u)), ' ', h('span.username', {}, `@${u.username}`))))
        : [h('li.empty', {}, 'Nobody found')]))
    }, 200)
  })
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
        h('span.name', {}, nameOf(u)), ' ', h('span.username', {}, `@${u.username}`))))
      : [h('li.empty', {}, 'Nobody found')]))
  }, 200)
})

async function startChat(user) {
  const c = await api.post('/conversations', { participant_ids: [user.id], is_group: false })
  if (!state.conversations.has(c.id)) addConversation(c)
  closeSearch()
  await openConversation(c.id)
}


// ---------- new group ----------

const picked = new Map()
function renderPicked() {
  $('#group-picked').replaceChildren(...[...picked.values()].map((u) => {
    const name = nameOf(u)
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

export function renderSettings(fresh = false) {
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
    const who = nameOf(p.user)
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
    closeConversation()
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
    endSession()
  } catch (err) {
    $('#delete-error').textContent = err.message
  }
})

