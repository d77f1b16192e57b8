// Sending a message, through the SDK's outbox: it is stored (IndexedDB) until the server acknowledges it and
// retried with its client_id, so a send made offline, or whose answer was lost, lands once, also after a reload.
// Until then it is shown at the end of its conversation as "Sending…".
import { $, h, randomId } from './dom.js'
import { api, state } from './state.js'

/** client_id → the outbox entry of a send not yet acknowledged */
const pending = new Map()

/**
 * Resolves with the Message once the server has it; rejects only when the server refuses it for good.
 * @param {{ conversation_id: string, content: string, reply_to_id?: string, thread_id?: string }} body
 */
export function sendMessage({ conversation_id, content, reply_to_id, thread_id }) {
  const client_id = randomId()
  pending.set(client_id, { client_id, conversation_id, content, thread_id, created_at: Date.now() })
  renderPending()
  return api.client.send(conversation_id, content, { reply_to_id, thread_id, client_id }).finally(() => settled(client_id))
}

/** The sends an earlier page of this account left in the outbox: shown now, sent when the client connects. */
export async function loadPending(client) {
  for (const entry of await client.outbox.storage.all()) pending.set(entry.client_id, entry)
  renderPending()
}

/** An entry the outbox is done with (sent, or refused), also one an earlier page left. */
export function settled(clientId) {
  if (pending.delete(clientId)) renderPending()
}

export function clearPending() {
  pending.clear()
  renderPending()
}

/** The open conversation's unsent messages, in the order written (thread replies wait in their thread's composer). */
export function renderPending() {
  const open = state.open?.id
  const items = [...pending.values()]
    .filter((e) => e.conversation_id === open && !e.thread_id)
    .sort((a, b) => a.created_at - b.created_at)
    .map((e) => h('li.message.own.pending', { dataset: { clientId: e.client_id } },
      h('p.text', {}, e.content), h('span.meta', {}, h('span.sending', {}, 'Sending…'))))
  $('#pending-list').replaceChildren(...items)
}
