// Searching my messages (GET /search/messages): results as I type, each opening its conversation at the message.
import { $, h, time } from './dom.js'
import { api, state, title, userName } from './state.js'
import { openAt } from './history.js'

const field = $('#message-search-input')
const results = $('#message-results')
let timer = null

/**
 * The server's highlight is HTML-escaped but for <mark>: it is turned into text and <mark> elements here rather
 * than given to innerHTML, so that nothing in a message can become markup, even if the server got it wrong.
 */
export function highlighted(passage) {
  const decode = document.createElement('textarea')
  const text = (s) => { decode.innerHTML = s; return decode.value }
  const parts = passage.split(/(<mark>|<\/mark>)/)
  const out = []
  let marked = false
  for (const part of parts) {
    if (part === '<mark>') marked = true
    else if (part === '</mark>') marked = false
    else if (part) out.push(marked ? h('mark', {}, text(part)) : text(part))
  }
  return out
}

function close() {
  results.hidden = true
  results.replaceChildren()
}

async function search(query) {
  const found = await api.get(`/search/messages?q=${encodeURIComponent(query)}&limit=20`).catch(() => null)
  if (field.value.trim() !== query || !found) return
  results.hidden = false
  results.replaceChildren(...(found.results.length
    ? found.results.map(({ message: m, highlight }) => {
      const c = state.conversations.get(m.conversation_id)
      return h('li', {}, h('button.result', {
        type: 'button',
        onclick: () => { field.value = ''; close(); openAt(m) },
      },
      h('span.where', {}, c ? title(c) : 'Conversation', ' · ', userName(m.sender_id)),
      h('time', { datetime: m.created_at }, time(m.created_at)),
      h('span.passage', {}, ...highlighted(highlight))))
    })
    : [h('li.empty', {}, 'No messages found')]))
}

$('#message-search').addEventListener('submit', (e) => e.preventDefault())
field.addEventListener('input', () => {
  clearTimeout(timer)
  const query = field.value.trim()
  if (!query) return close()
  timer = setTimeout(() => search(query), 200)
})
field.addEventListener('keydown', (e) => { if (e.key === 'Escape') { field.value = ''; close() } })
