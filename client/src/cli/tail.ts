// parley tail <conversation>: its events as they come, from now on. The SDK's live connection reconnects and
// resumes from the last seq printed, so an event committed while the network was down is printed once, in
// order. Ends cleanly on SIGINT / SIGTERM (exit 0), or when the session is refused (exit 1).
import type { Conversation, ServerEvent } from '../types.ts'
import { signedIn } from './connect.ts'
import { eventLine } from './format.ts'
import type { Output } from './output.ts'
import { resolveConversation } from './messages.ts'

export async function tail(out: Output, target: string): Promise<void> {
  const { client } = await signedIn()
  let conversation: Conversation
  try {
    conversation = await resolveConversation(client, target)
  } catch (err) {
    client.close()
    throw err
  }
  const id = conversation.id
  client.follow(id, conversation.last_seq)
  client.on('event', (e: ServerEvent) => {
    if (e.conversation_id !== id) return
    if (e.type === 'conversation_updated' && e.seq !== undefined) conversation = e.data
    out.result(e, () => eventLine(conversation, e))
  })
  client.on('tokens', () => out.note({ session: 'refreshed' }, 'session refreshed'))
  let last = ''
  client.on('state', ({ state, code }) => {
    if (state === last) return // closed by the SDK on a refused session, then by us
    last = state
    out.note({ state, code }, state === 'offline' ? `offline (${code}), reconnecting` : state)
  })
  const ended = new Promise<void>((resolve, reject) => {
    const stop = () => resolve()
    process.once('SIGINT', stop)
    process.once('SIGTERM', stop)
    client.on('signed_out', (err) => reject(err))
  })
  out.note({ state: 'following', conversation_id: id, last_seq: conversation.last_seq }, `following ${id} after seq ${conversation.last_seq}`)
  client.connect()
  try {
    await ended
  } finally {
    client.close()
  }
}
