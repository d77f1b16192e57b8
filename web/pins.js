// The open conversation's pinned messages: the bar above the history, with the latest pin.
import { h, $ } from './dom.js'
import { icon } from './icons.js'
import { summary } from './list.js'
import { showPins } from './message-dialogs.js'
import { api, nameOf, state } from './state.js'


export async function loadPins(c = state.open) {
  if (!c) return
  const pins = await api.get(`/conversations/${c.id}/pins`).catch(() => null)
  if (!pins || state.open !== c) return
  state.pins = pins
  c.pinned_count = pins.length
  renderPins()
}

export function renderPins() {
  const bar = $('#pinned-bar')
  const latest = state.pins[0]
  bar.hidden = !state.open || !latest
  if (!latest) return
  const n = state.pins.length
  bar.replaceChildren(
    h('button.pinned-open', { type: 'button', 'aria-label': `${n} pinned message${n === 1 ? '' : 's'}: show them`, onclick: (e) => showPins(e.currentTarget) },
      icon('pin'), h('span.pinned-count', {}, `${n} pinned`), h('span.pinned-text', {}, `${nameOf(state.users.get(latest.sender_id))}: ${summary(latest)}`)))
}
