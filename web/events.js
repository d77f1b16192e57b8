// Live events from the socket, applied to the state and the page.
import { setTyping } from './composer.js'
import { renderSettings } from './dialogs.js'
import { fetchConversation, refreshUser, rememberUser, renderList } from './list.js'
import { session } from './session.js'
import { api, state } from './state.js'
import { threadUpdated } from './thread.js'
import { loadPins } from './pins.js'
import { readUpTo, renderReceipts } from './receipts.js'
import { closeConversation, setReactions, upsert } from './view.js'

export async function onEvent(frame) {
  const { type, conversation_id: id, data } = frame
  if (type === 'presence') {
    const was = state.presence.get(data.user_id)?.is_online
    state.presence.set(data.user_id, { is_online: data.is_online, last_seen: data.last_seen })
    if (data.is_online && !was) refreshUser(data.user_id)
    return renderList()
  }
  if (type === 'typing_indicator') return setTyping(data)
  if (type === 'user_updated') {
    rememberUser(data)
    if (data.id === state.me.id) session.onUser({ ...state.me, ...data })
    return renderList()
  }
  // My own settings of a conversation (mute, archive), changed on another device: no seq, mine only.
  if (type === 'conversation_updated' && typeof frame.seq !== 'number' && state.conversations.has(id)) {
    const c = state.conversations.get(id)
    applyConversation(c, data)
    if (c.is_archived !== state.showArchived && state.open?.id === id) closeConversation()
    return renderList()
  }
  if (type === 'read_state' && state.conversations.has(data.conversation_id)) {
    Object.assign(state.conversations.get(data.conversation_id), { unread_count: data.unread_count, unread_mention_count: data.unread_mention_count })
    return renderList()
  }
  if (!id || typeof frame.seq !== 'number') return
  if (!state.conversations.has(id)) {
    // Loaded after the event: its state already includes it.
    if (type !== 'participant_removed') await fetchConversation(id)
    return
  }
  const c = state.conversations.get(id)
  const open = state.open?.id === id
  switch (type) {
    case 'new_message':
      if (data.sender_id !== state.me.id && !open && data.message_type !== 'system') {
        c.unread_count += 1
        if (data.mentions?.includes(state.me.id)) c.unread_mention_count = (c.unread_mention_count ?? 0) + 1
      }
      if (data.sender_id) setTyping({ conversation_id: id, user_id: data.sender_id, is_typing: false })
      upsert(data)
      break
    case 'message_edited':
    case 'message_deleted':
      upsert(data)
      break
    case 'message_pinned':
    case 'message_unpinned':
      upsert(data)
      if (open) loadPins(c)
      else c.pinned_count = Math.max(0, (c.pinned_count ?? 0) + (type === 'message_pinned' ? 1 : -1))
      break
    case 'reaction_added':
    case 'reaction_removed':
      if (open) setReactions(data.message_id, data.reactions)
      break
    case 'thread_updated':
      if (open) threadUpdated(data)
      break
    case 'message_read':
      if (data.user_id === state.me.id) {
        if (!open) { c.unread_count = 0; c.unread_mention_count = 0; renderList() }
      } else {
        const m = state.messages.get(data.message_id) ?? (open ? await api.get(`/messages/${data.message_id}`).catch(() => null) : null)
        if (m) readUpTo(id, data.user_id, m.seq)
      }
      break
    case 'participant_removed':
      if (data.user_id === state.me.id) {
        state.conversations.delete(id)
        if (open) closeConversation()
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

/** A fresh copy of a conversation, keeping what this client counts itself. */
export function applyConversation(c, fresh) {
  Object.assign(c, fresh, { last_message: c.last_message, unread_count: c.unread_count, unread_mention_count: c.unread_mention_count })
  for (const p of c.participants) rememberUser(p.user)
  if (state.open?.id === c.id) {
    for (const el of document.querySelectorAll('#message-list .sender')) el.textContent = state.users.get(el.dataset.user)?.display_name || state.users.get(el.dataset.user)?.username || 'Someone'
    renderReceipts()
  }
}
