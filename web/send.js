// Sending a message. Every send carries a client_id, so that a retry after a network failure lands once: the
// server answers a repeated client_id with the first message.
import { ApiError } from './api.js'
import { randomId } from './dom.js'
import { api } from './state.js'

/** POST /messages, retried with the same client_id while the network fails; throws when the server refuses it. */
export async function sendMessage(body, attempts = 3) {
  const payload = { ...body, client_id: randomId() }
  for (let attempt = 1; ; attempt++) {
    try {
      return await api.post('/messages', payload)
    } catch (err) {
      if (err instanceof ApiError || attempt >= attempts) throw err
    }
  }
}
