import { badRequest, conflict } from '../errors.ts'
import type { Message } from '../schemas/messages.ts'
import type { MessagesService } from './messages.ts'

export interface ForwardTarget {
  conversation_id?: string
  recipient_id?: string
  client_id?: string
}

/**
 * Forwarding: a new message in the target, the source's text and file, with `forwarded_from` (who sent the
 * original and when, through any number of forwards) and nothing else of where it came from. The forwarder must
 * see the source and may send to the target; the copy is sent as any message is (seq, event, client_id).
 */
export class ForwardingService {
  constructor(private readonly messages: MessagesService) {}

  async forward(messageId: string, userId: string, target: ForwardTarget): Promise<{ message: Message; created: boolean }> {
    const source = await this.messages.visible(messageId, userId)
    const m = source.message
    if (m.is_deleted) throw conflict('A deleted message cannot be forwarded', 'MESSAGE_DELETED')
    if (m.message_type === 'system') throw badRequest('System messages cannot be forwarded', 'NOT_FORWARDABLE')
    const file = source.file_id && m.message_type !== 'text'
      ? {
          file_id: source.file_id, message_type: m.message_type, file_url: m.file_url!, file_name: m.file_name!, file_size: m.file_size!, mime_type: m.mime_type!,
          // The same file, so the same preview.
          ...(m.thumbnail_url !== null && { thumbnail_url: m.thumbnail_url, width: m.width!, height: m.height! }),
        }
      : undefined
    return this.messages.send(
      userId,
      { ...target, content: m.content ?? undefined },
      file,
      m.forwarded_from ?? { sender_id: m.sender_id, created_at: m.created_at },
    )
  }
}
