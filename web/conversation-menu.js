// The open conversation's menu (the header's "…"): mute, archive, mark as unread, and the other person's profile.
import { $, h } from './dom.js'
import { applyConversation } from './events.js'
import { renderList } from './list.js'
import { closePopup, popup } from './menu.js'
import { api, isMuted, others, sorted, state } from './state.js'
import { showUser } from './user-dialog.js'
import { closeConversation } from './view.js'

const HOUR = 3_600_000
/** "Until I unmute": a time no one reaches, as Slack and Matrix keep an indefinite mute. */
const FOREVER = '9999-12-31T23:59:59.000Z'

/** Changes my own settings of a conversation; the server tells my other devices (conversation_updated). */
export async function changeSettings(c, patch) {
  try {
    applyConversation(c, await api.patch(`/conversations/${c.id}/settings`, patch))
  } catch (err) {
    console.warn('settings refused:', err.message)
    return
  }
  // An archived conversation leaves the list it was in, so it is closed too.
  if (patch.is_archived !== undefined && state.open?.id === c.id) closeConversation()
  renderList()
}

/** Moves my read position back to just before `m`: the conversation counts it unread again, and is closed. */
export async function markUnread(c, m) {
  try {
    await api.post(`/messages/${m.id}/unread`)
  } catch (err) {
    console.warn('mark unread refused:', err.message)
    return
  }
  state.myRead.set(c.id, m.seq - 1)
  // Left open, the conversation would be read again at once; the read_state frame brings the counts.
  if (state.open?.id === c.id) closeConversation()
}

const muteFor = (ms) => new Date(Date.now() + ms).toISOString()

$('#conv-menu').addEventListener('click', (e) => {
  const c = state.open
  const opener = e.currentTarget
  if (!c) return
  const act = (label, run) => h('button', { type: 'button', role: 'menuitem', onclick: () => { closePopup(); run() } }, label)
  const lastTheirs = sorted().filter((m) => m.sender_id !== state.me.id && m.message_type !== 'system' && !m.is_deleted).at(-1)
  const other = c.is_group ? null : others(c)[0]
  const menu = h('div.menu.conversation-menu', { role: 'menu', 'aria-label': 'Conversation options' },
    ...(isMuted(c)
      ? [act('Unmute', () => changeSettings(c, { muted_until: null }))]
      : [
          act('Mute for 1 hour', () => changeSettings(c, { muted_until: muteFor(HOUR) })),
          act('Mute for 8 hours', () => changeSettings(c, { muted_until: muteFor(8 * HOUR) })),
          act('Mute for a week', () => changeSettings(c, { muted_until: muteFor(7 * 24 * HOUR) })),
          act('Mute until I unmute', () => changeSettings(c, { muted_until: FOREVER })),
        ]),
    act(c.is_archived ? 'Unarchive' : 'Archive', () => changeSettings(c, { is_archived: !c.is_archived })),
    lastTheirs ? act('Mark as unread', () => markUnread(c, lastTheirs)) : null,
    other ? act('View profile', () => showUser(other.id, opener)) : null)
  popup(opener.closest('header'), opener, menu, { ArrowDown: 1, ArrowUp: -1 })
})
