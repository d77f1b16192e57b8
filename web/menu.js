// A message's menu (from its "…" button on hover or focus, a long press, or a right click) and the reaction picker.
import { setReply } from './composer.js'
import { h } from './dom.js'
import { markUnread } from './conversation-menu.js'
import { confirmDelete, forwardMessage } from './message-dialogs.js'
import { api, canPin, state } from './state.js'
import { openThread } from './thread.js'
import { setReactions, startEdit, upsert } from './view.js'

const RECENT_KEY = 'parley.recent-emoji'
const DEFAULT_RECENT = ['👍', '❤️', '😂', '😮', '😢', '🙏']
export const EMOJI = [
  '👍', '👎', '❤️', '😂', '😮', '😢', '😡', '🙏', '🎉', '🔥', '👀', '✅', '❌', '💯', '🙌', '👏',
  '😀', '😊', '😉', '😍', '🤔', '😅', '😎', '🥳', '😴', '🤯', '🙈', '💪', '🤝', '👋', '☕', '🍕',
  '🚀', '⭐', '💡', '📌', '🐛', '🇫🇷', '👍🏽', '👨‍👩‍👧',
]

/** The emoji I reacted with last, most recent first: the picker's first row. */
export function recentEmoji() {
  try {
    const list = JSON.parse(localStorage.getItem(RECENT_KEY) ?? 'null')
    if (Array.isArray(list) && list.length) return [...new Set([...list, ...DEFAULT_RECENT])].slice(0, 8)
  } catch {}
  return DEFAULT_RECENT
}
function remember(emoji) {
  localStorage.setItem(RECENT_KEY, JSON.stringify([emoji, ...recentEmoji().filter((e) => e !== emoji)].slice(0, 8)))
}

/** Adds my reaction, or takes it back when I already gave it. */
export async function toggleReaction(m, emoji) {
  const current = state.messages.get(m.id) ?? m
  const mine = current.reactions?.some((r) => r.emoji === emoji && r.user_ids.includes(state.me.id))
  try {
    const updated = mine
      ? await api.del(`/messages/${m.id}/reactions/${encodeURIComponent(emoji)}`)
      : await api.post(`/messages/${m.id}/reactions`, { emoji })
    if (!mine) remember(emoji)
    setReactions(updated.id, updated.reactions)
  } catch (err) {
    console.warn('reaction refused:', err.message)
  }
}

let current = null
/** Closes the open menu or picker; focus goes back to what opened it when `refocus`. */
export function closePopup(refocus = false) {
  if (!current) return
  const { el, opener } = current
  current = null
  el.remove()
  opener?.setAttribute('aria-expanded', 'false')
  if (refocus && opener?.isConnected) opener.focus()
}
document.addEventListener('pointerdown', (e) => {
  if (current && !current.el.contains(e.target) && e.target !== current.opener) closePopup()
}, true)

/** A popup in the message's item, with arrow keys between its buttons and Esc to close. */
export function popup(item, opener, el, keys) {
  closePopup()
  current = { el, opener }
  opener.setAttribute('aria-expanded', 'true')
  el.addEventListener('keydown', (e) => {
    const buttons = [...el.querySelectorAll('button')]
    const i = buttons.indexOf(document.activeElement)
    const step = keys[e.key]
    if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); closePopup(true) }
    else if (step !== undefined) { e.preventDefault(); buttons[(i + step + buttons.length) % buttons.length]?.focus() }
    else if (e.key === 'Home' || e.key === 'End') { e.preventDefault(); buttons.at(e.key === 'Home' ? 0 : -1)?.focus() }
    else if (e.key === 'Tab') closePopup()
  })
  item.append(el)
  el.querySelector('button')?.focus()
}

export function messageMenu(m, opener, { inThread = false } = {}) {
  const item = opener.closest('li')
  if (current?.opener === opener) return closePopup(true)
  m = state.messages.get(m.id) ?? m
  const own = m.sender_id === state.me.id
  const act = (label, run) => h('button', { type: 'button', role: 'menuitem', onclick: () => { closePopup(); run() } }, label)
  const menu = h('div.menu', { role: 'menu', 'aria-label': 'Message actions' },
    act('Add reaction', () => reactionPicker(m, opener)),
    inThread ? null : act('Reply', () => setReply(m)),
    inThread ? null : act('Reply in thread', () => openThread(m.thread_id ?? m.id)),
    act('Forward', () => forwardMessage(m, opener)),
    canPin(state.open) && !m.thread_id ? act(m.pinned_at ? 'Unpin' : 'Pin', () => pin(m)) : null,
    !own && !inThread ? act('Mark as unread', () => markUnread(state.open, m)) : null,
    own && m.message_type === 'text' ? act('Edit', () => startEdit(m.id)) : null,
    own ? act('Delete', () => confirmDelete(m, opener)) : null)
  popup(item, opener, menu, { ArrowDown: 1, ArrowUp: -1 })
}

async function pin(m) {
  try {
    upsert(await (m.pinned_at ? api.del(`/messages/${m.id}/pin`) : api.post(`/messages/${m.id}/pin`)))
  } catch (err) {
    console.warn('pin refused:', err.message)
  }
}

export function reactionPicker(m, opener) {
  const item = opener.isConnected ? opener.closest('li') : document.querySelector(`[data-id="${CSS.escape(m.id)}"]`)
  if (!item) return
  const button = (emoji) => h('button', { type: 'button', 'aria-label': `React with ${emoji}`, title: emoji, onclick: () => { closePopup(true); toggleReaction(m, emoji) } }, emoji)
  const picker = h('div.emoji-picker', { role: 'dialog', 'aria-label': 'Add a reaction' },
    h('p.picker-label', {}, 'Recent'), h('div.emoji-row.recent', {}, ...recentEmoji().map(button)),
    h('p.picker-label', {}, 'All'), h('div.emoji-row.all', {}, ...EMOJI.map(button)))
  popup(item, item.querySelector('.menu-button') ?? opener, picker, { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 8, ArrowUp: -8 })
}
