// parley conversations · send · upload
import { openAsBlob } from 'node:fs'
import { basename } from 'node:path'
import type { ParleyClient } from '../client.ts'
import { unwrap } from '../rest.ts'
import { type Conversation, type Message, ParleyError } from '../types.ts'
import { type Signed, signedIn } from './connect.ts'
import { conversationLine, messageLine } from './format.ts'
import type { Output } from './output.ts'

/** Runs `fn` on the kept session; the client is closed whatever happens. */
export async function withSession<T>(fn: (s: Signed) => Promise<T>): Promise<T> {
  const signed = await signedIn()
  try {
    return await fn(signed)
  } finally {
    signed.client.close()
  }
}

export const conversations = (out: Output, opts: { archived?: boolean; limit?: number }) =>
  withSession(async ({ client, session }) => {
    const query = { archived: opts.archived || undefined, limit: opts.limit }
    const list = await unwrap(client.rest.GET('/conversations', { params: { query } }))
    out.result(list, () => (list.length ? list.map((c) => conversationLine(c, session.user.id)).join('\n') : 'no conversations'))
  })

/** A conversation id, or `@username`: the direct conversation with that user (opened if there is none yet). */
export async function resolveConversation(client: ParleyClient, target: string): Promise<Conversation> {
  if (!target.startsWith('@')) return unwrap(client.rest.GET('/conversations/{id}', { params: { path: { id: target } } }))
  const username = target.slice(1)
  const found = await unwrap(client.rest.GET('/users', { params: { query: { query: username, limit: 50 } } }))
  const user = found.find((u) => u.username.toLowerCase() === username.toLowerCase())
  if (!user) throw new ParleyError('USER_NOT_FOUND', `no user @${username}`, 404)
  return unwrap(client.rest.POST('/conversations', { body: { participant_ids: [user.id], is_group: false } }))
}

export interface SendFlags {
  clientId?: string
  replyTo?: string
  timeout: number
}

/** Through the SDK's outbox (socket or REST, retried with one client_id): gives up after --timeout seconds. */
export const send = (out: Output, target: string, text: string, opts: SendFlags) =>
  withSession(async ({ client }) => {
    const conversation = await resolveConversation(client, target)
    const client_id = opts.clientId ?? crypto.randomUUID()
    const sending = client.send(conversation.id, text, { client_id, reply_to_id: opts.replyTo })
    const message = await deadline(sending, opts.timeout, client_id)
    out.result(message, () => `${messageLine(conversation, message)}  (${message.id}, seq ${message.seq})`)
  })

export const upload = (out: Output, target: string, file: string, opts: { caption?: string }) =>
  withSession(async ({ client }) => {
    const conversation = await resolveConversation(client, target)
    const form = new FormData()
    form.append('file', await openAsBlob(file), basename(file))
    const message = await unwrap(
      client.rest.POST('/messages/upload', {
        params: { query: { conversation_id: conversation.id, caption: opts.caption } },
        body: form as never,
        bodySerializer: () => form, // sent as it is: fetch sets the multipart boundary
      }),
    )
    out.result(message, () => `${messageLine(conversation, message)}  (${message.id}, ${message.file_size} bytes)`)
  })

function deadline(sending: Promise<Message>, seconds: number, clientId: string): Promise<Message> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ParleyError('TIMEOUT', `not acknowledged within ${seconds}s (to retry safely: --client-id ${clientId})`)), seconds * 1000)
  })
  return Promise.race([sending, late]).finally(() => clearTimeout(timer))
}
