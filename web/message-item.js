// How one message is shown: its bubble, quote, media, reactions, ticks and menu, and its editor.
import { $, h, time } from './dom.js'
import { jumpTo } from './history.js'
import { icon } from './icons.js'
import { messageMenu, toggleReaction } from './menu.js'
import { showHistory, viewImage } from './message-dialogs.js'
import { systemText } from './list.js'
import { setTicks } from './receipts.js'
import { api, links, size, state, userName } from './state.js'
import { richText } from './text.js'
import { openThread } from './thread.js'
import { replaceItem, upsert } from './view.js'

function quote(m) {
  const q = m.reply_to
  const text = q.is_deleted ? 'This message was deleted' : q.message_type === 'text' ? q.content : q.content || `${q.message_type}`
  return h('button.quote', {
    type: 'button',
    'aria-label': `Reply to ${userName(q.sender_id)}: ${text}. Show the original`,
    onclick: () => jumpTo(q.id),
  }, h('span.quote-sender', {}, userName(q.sender_id)), h(`span.quote-text${q.is_deleted ? '.deleted' : ''}`, {}, text))
}

function reactionChips(m) {
  if (!m.reactions?.length || m.is_deleted) return null
  return h('div.reactions', {}, ...m.reactions.map((r) => {
    const mine = r.user_ids.includes(state.me.id)
    const who = r.user_ids.map(userName).join(', ')
    return h('button.reaction', {
      type: 'button',
      'aria-pressed': String(mine),
      'aria-label': `${r.emoji} ${r.count}: ${who}${mine ? ' (you: click to take it back)' : ''}`,
      title: who,
      dataset: { emoji: r.emoji },
      onclick: () => toggleReaction(m, r.emoji),
    }, h('span.emoji', {}, r.emoji), h('span.count', {}, String(r.count)))
  }))
}

/** The member usernames a message mentions, lower-cased, with their ids. */

/**
 * The box an image will fill, before it loads (the Message says its size): the list does not jump when it
 * arrives, and a conversation opened at its newest message stays there. As `.media img` in the CSS bounds it,
 * and never wider than the preview itself (at most 480×480, never enlarged).
 */
function reserveSize(img, m) {
  if (!m.width || !m.height) return
  const natural = m.width * Math.min(1, 480 / m.width, 480 / m.height)
  img.style.aspectRatio = `${m.width} / ${m.height}`
  img.style.width = `min(18rem, 70vw, ${((14 * m.width) / m.height).toFixed(3)}rem, ${natural.toFixed(1)}px)`
}
function mentioned(m) {
  const map = new Map()
  for (const id of m.mentions ?? []) {
    const u = state.users.get(id)
    if (u) map.set(u.username.toLowerCase(), id)
  }
  return map
}

/** One message as a list item; `inThread` for the thread panel (no thread link there). */
export function messageItem(m, { grouped = false, inThread = false } = {}) {
  if (m.message_type === 'system') return h('li.system', { dataset: { id: m.id } }, systemText(m))
  const own = m.sender_id === state.me.id
  const c = state.open
  const body = m.is_deleted
    ? h('p.text.deleted', {}, m.content)
    : state.editing === m.id ? editor(m) : m.content ? h('p.text', {}, ...richText(m.content, mentioned(m), state.me.id)) : null
  let media = null
  if (!m.is_deleted && m.file_url) {
    const name = m.file_name ?? 'file'
    const img = m.message_type === 'image' ? h('img', { alt: name }) : null
    media = img
      ? h('a.media', { target: '_blank', rel: 'noopener noreferrer', 'aria-label': `Open image ${name}`, onclick: (e) => viewImage(e, m) }, img)
      : m.message_type === 'video'
        ? h('video.media', { controls: true, preload: 'metadata', 'aria-label': name })
        : h('a.file', { download: name }, icon('file'), ` ${name}`, h('span.size', {}, ` ${size(m.file_size)}`))
    links.show(media, media.tagName === 'A' ? 'href' : 'src', m.file_url)
    if (img) {
      reserveSize(img, m)
      // The preview in the list; the full image only in the viewer.
      if (m.thumbnail_url) links.showPreview(img, m.file_url)
      else links.show(img, 'src', m.file_url)
    }
  }
  const meta = h('span.meta', {},
    m.pinned_at && !m.is_deleted ? h('span.pinned-mark', { title: `Pinned by ${userName(m.pinned_by)}`, 'aria-label': 'Pinned' }, icon('pin')) : null,
    m.is_edited && !m.is_deleted ? h('button.edited', { type: 'button', 'aria-label': 'Edited: show the history', onclick: (e) => showHistory(m, e.currentTarget) }, 'edited') : null,
    h('time', { datetime: m.created_at }, time(m.created_at)),
    own && !m.is_deleted ? h('span.ticks', { dataset: { seq: String(m.seq) } }) : null)
  const ticks = meta.querySelector('.ticks')
  if (ticks) setTicks(ticks)
  const replies = m.thread_reply_count
  const threadLink = !inThread && replies > 0
    ? h('button.thread-link', { type: 'button', onclick: () => openThread(m.id) },
      `${replies} repl${replies === 1 ? 'y' : 'ies'}`, m.thread_last_reply_at ? h('span.last-reply', {}, ` · last ${time(m.thread_last_reply_at)}`) : null)
    : null
  const menu = !m.is_deleted && state.editing !== m.id
    ? h('button.menu-button', { type: 'button', 'aria-label': 'Message actions', 'aria-haspopup': 'menu', 'aria-expanded': 'false', onclick: (e) => messageMenu(m, e.currentTarget, { inThread }) }, icon('more'))
    : null
  const li = h(`li.message${own ? '.own' : '.theirs'}${grouped ? '.grouped' : ''}${m.pinned_at && !m.is_deleted ? '.pinned' : ''}`, { dataset: { id: m.id }, tabindex: '-1' },
    !own && c?.is_group && !grouped ? h('span.sender', { dataset: { user: m.sender_id } }, userName(m.sender_id)) : null,
    m.forwarded_from && !m.is_deleted ? h('p.forwarded', {}, 'Forwarded') : null,
    m.reply_to && !inThread ? quote(m) : null,
    media, body, reactionChips(m), meta, threadLink, menu)
  if (menu) longPress(li, () => messageMenu(m, menu, { inThread }))
  return li
}

/** A long press (touch, or a held mouse button) or a right click opens the message's menu. */
function longPress(el, open) {
  let timer = null
  const cancel = () => { clearTimeout(timer); timer = null }
  el.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 || e.target.closest('button, a, textarea, video, .menu, .emoji-picker')) return
    cancel()
    timer = setTimeout(() => { timer = null; open() }, 500)
  })
  for (const type of ['pointerup', 'pointerleave', 'pointercancel']) el.addEventListener(type, cancel)
  el.addEventListener('pointermove', (e) => { if (Math.abs(e.movementX) + Math.abs(e.movementY) > 8) cancel() })
  el.addEventListener('contextmenu', (e) => {
    if (e.target.closest('a, textarea, video, .menu, .emoji-picker')) return
    e.preventDefault()
    cancel()
    open()
  })
}

function editor(m) {
  const input = h('textarea.edit-input', { 'aria-label': 'Edit message', rows: 2, maxlength: 5000 })
  input.value = m.content
  const save = async () => {
    const content = input.value.trim()
    if (!content || content === m.content) return close()
    try {
      upsert(await api.patch(`/messages/${m.id}`, { content }))
      // Closed here, not by upsert: the edit's frame can come before this answer, and then the answer is a copy
      // already held, which upsert has no reason to render.
      close()
    } catch (err) {
      error.textContent = err.message
    }
  }
  const close = () => { state.editing = null; replaceItem(m.id); $('#composer-input').focus() }
  input.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) { e.preventDefault(); save() }
    if (e.key === 'Escape') close()
  })
  const error = h('span.form-error', { role: 'alert' })
  queueMicrotask(() => { input.focus(); input.select() })
  return h('div.editor', {}, input,
    h('button.primary', { type: 'button', onclick: save }, 'Save'),
    h('button', { type: 'button', onclick: close }, 'Cancel'), error)
}

