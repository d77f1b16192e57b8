// Dialogs about one message: the image viewer, forwarding, the edit history, the pins list, deleting.
import { $, day, h, randomId, time } from './dom.js'
import { showDialog } from './dialogs.js'
import { summary } from './list.js'
import { api, links, state, title, userName } from './state.js'
import { jumpTo } from './history.js'
import { upsert } from './view.js'

/** A click on a preview shows the image at full size (up to the window's); a modified click opens a tab. */
export function viewImage(e, m) {
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

/** Forward to a conversation I pick: the list of my conversations, a click sends the copy there. */
export function forwardMessage(m, opener) {
  const d = $('#forward-dialog')
  $('#forward-quote').textContent = `${userName(m.sender_id)}: ${summary(m)}`
  $('#forward-status').textContent = ''
  const targets = [...state.conversations.values()].sort((a, b) => title(a).localeCompare(title(b)))
  $('#forward-targets').replaceChildren(...targets.map((c) => h('li', {}, h('button', {
    type: 'button',
    onclick: async (e) => {
      const b = e.currentTarget
      b.disabled = true
      try {
        const copy = await api.post(`/messages/${m.id}/forward`, { conversation_id: c.id, client_id: randomId() })
        upsert(copy)
        $('#forward-status').textContent = `Forwarded to ${title(c)}`
        d.close()
      } catch (err) {
        d.querySelector('.form-error').textContent = err.message
      } finally {
        b.disabled = false
      }
    },
  }, title(c), c.id === state.open?.id ? ' (this conversation)' : ''))))
  showDialog(d, opener)
  d.querySelector('#forward-targets button')?.focus()
}

/** Every earlier wording of an edited message, oldest first, then the current one. */
export async function showHistory(m, opener) {
  const d = $('#history-dialog')
  const list = $('#history-list')
  list.replaceChildren(h('li.empty', {}, 'Loading…'))
  showDialog(d, opener)
  d.querySelector('.close').focus()
  try {
    const edits = await api.get(`/messages/${m.id}/edits`)
    const now = state.messages.get(m.id) ?? m
    list.replaceChildren(
      ...edits.map((e, i) => h('li.version', {},
        h('p.text', {}, e.content ?? ''),
        h('span.meta', {}, i === 0 ? 'Original' : 'Edited', ' · replaced ', h('time', { datetime: e.edited_at }, `${day(e.edited_at)} ${time(e.edited_at)}`)))),
      h('li.version.current', {}, h('p.text', {}, now.content ?? ''), h('span.meta', {}, 'Now')))
  } catch (err) {
    list.replaceChildren(h('li.form-error', {}, err.message))
  }
}

/** The pinned messages of the open conversation; a click shows one in the history. */
export function showPins(opener) {
  const d = $('#pins-dialog')
  $('#pins-list').replaceChildren(...state.pins.map((m) => h('li', {},
    h('button.pin-jump', {
      type: 'button',
      onclick: async () => { d.close(); await jumpTo(m.id) },
    }, h('span.sender', {}, userName(m.sender_id)), h('span.pin-text', {}, summary(m)),
    h('time', { datetime: m.pinned_at }, `pinned ${day(m.pinned_at)} ${time(m.pinned_at)}`)))))
  showDialog(d, opener)
  d.querySelector('#pins-list button')?.focus()
}

/** Deleting asks first. */
export function confirmDelete(m, opener) {
  const d = $('#delete-dialog')
  $('#delete-quote').textContent = summary(m)
  d.onsubmit = async (e) => {
    e.preventDefault()
    try {
      upsert(await api.del(`/messages/${m.id}`))
      d.close()
    } catch (err) {
      d.querySelector('.form-error').textContent = err.message
    }
  }
  showDialog(d, opener.isConnected ? opener : null)
  d.querySelector('button.danger').focus()
}
