// Another person's profile: their name, picture and presence, and blocking them.
import { $ } from './dom.js'
import { showDialog } from './dialogs.js'
import { rememberUser, renderList } from './list.js'
import { api, avatar, nameOf, state } from './state.js'

const dialog = $('#user-dialog')
let shown = null

function render(u) {
  shown = u
  $('#user-title').textContent = nameOf(u)
  $('#user-username').textContent = `@${u.username}`
  $('#user-avatar').replaceChildren(avatar(u.avatar_url, nameOf(u)))
  $('#user-blocked').hidden = !u.is_blocked
  const button = $('#user-block')
  button.textContent = u.is_blocked ? 'Unblock' : 'Block'
  button.className = u.is_blocked ? '' : 'danger'
}

export async function showUser(id, opener) {
  const u = await api.get(`/users/${id}`).catch(() => state.users.get(id))
  if (!u) return
  rememberUser(u)
  render(u)
  showDialog(dialog, opener)
}

/** Blocking keeps the conversation, as WhatsApp does: they can no longer write to me, nor I to them. */
$('#user-block').addEventListener('click', async () => {
  const u = shown
  const error = dialog.querySelector('.form-error')
  error.textContent = ''
  try {
    await (u.is_blocked ? api.del(`/users/${u.id}/block`) : api.post(`/users/${u.id}/block`))
    render({ ...u, is_blocked: !u.is_blocked })
    rememberUser(shown)
    renderList()
  } catch (err) {
    error.textContent = err.message
  }
})
