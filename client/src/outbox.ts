// Sends that land exactly once: each gets a client_id when it is made, is stored until the server acknowledges
// it, and is retried with that same client_id, which the server makes idempotent per sender (a retry of a
// send that did land returns the first message). Sent one at a time, in the order they were made.
import { Backoff, type BackoffOptions } from './backoff.ts'
import { Emitter } from './emitter.ts'
import { type Message, ParleyError, retryable } from './types.ts'

export interface OutboxEntry {
  client_id: string
  conversation_id: string
  content: string
  reply_to_id?: string
  thread_id?: string
  /** ms since the epoch: entries are sent in this order. */
  created_at: number
}

/** Where entries wait: memory by default; IndexedDB or a file makes a send survive a reload or a restart. */
export interface OutboxStorage {
  all(): Promise<OutboxEntry[]>
  put(entry: OutboxEntry): Promise<void>
  remove(clientId: string): Promise<void>
}

export class MemoryOutbox implements OutboxStorage {
  private entries = new Map<string, OutboxEntry>()
  async all() {
    return [...this.entries.values()]
  }
  async put(entry: OutboxEntry) {
    this.entries.set(entry.client_id, entry)
  }
  async remove(clientId: string) {
    this.entries.delete(clientId)
  }
}

export interface OutboxEvents {
  sent: { entry: OutboxEntry; message: Message }
  /** Refused for good (not a member, blocked, invalid): removed from the outbox. */
  failed: { entry: OutboxEntry; error: ParleyError }
}

type Transport = (entry: OutboxEntry) => Promise<Message>

export class Outbox extends Emitter<OutboxEvents> {
  private waiters = new Map<string, { resolve(m: Message): void; reject(e: Error): void }>()
  private running = false
  private wake: (() => void) | undefined
  private stopped = false
  /** Kicked while a flush runs: it may have read the storage before the newest entry, so it reads it again. */
  private again = false
  private readonly backoff: Backoff

  constructor(readonly storage: OutboxStorage, private readonly transport: Transport, backoff?: BackoffOptions) {
    super()
    this.backoff = new Backoff(backoff)
  }

  /** Stores a send and resolves with its Message once the server has it. */
  async add(entry: OutboxEntry): Promise<Message> {
    const landed = new Promise<Message>((resolve, reject) => this.waiters.set(entry.client_id, { resolve, reject }))
    await this.storage.put(entry)
    this.kick()
    return landed
  }

  /** Tries now: at start-up (entries left by an earlier run), and whenever a way to the server opens. */
  kick(): void {
    this.stopped = false
    this.again = true
    this.wake?.()
    if (!this.running) void this.flush()
  }

  stop(): void {
    this.stopped = true
    this.wake?.()
  }

  private async flush(): Promise<void> {
    this.running = true
    try {
      while (this.again && !this.stopped) {
        this.again = false
        for (let next = await this.first(); next && !this.stopped; next = await this.first()) {
          if (!(await this.attempt(next))) await this.pause(this.backoff.next())
        }
      }
    } finally {
      this.running = false
    }
  }

  /** One try; true when the entry is settled (sent, or refused for good). */
  private async attempt(entry: OutboxEntry): Promise<boolean> {
    try {
      const message = await this.transport(entry)
      await this.settle(entry, (w) => w.resolve(message))
      this.backoff.reset()
      this.emit('sent', { entry, message })
      return true
    } catch (err) {
      if (retryable(err)) return false
      const error = err as ParleyError
      await this.settle(entry, (w) => w.reject(error))
      this.emit('failed', { entry, error })
      return true
    }
  }

  private async settle(entry: OutboxEntry, fn: (w: { resolve(m: Message): void; reject(e: Error): void }) => void) {
    await this.storage.remove(entry.client_id)
    const waiter = this.waiters.get(entry.client_id)
    this.waiters.delete(entry.client_id)
    if (waiter) fn(waiter)
  }

  private async first(): Promise<OutboxEntry | undefined> {
    const all = await this.storage.all()
    return all.sort((a, b) => a.created_at - b.created_at)[0]
  }

  /** Waits `ms`, or less if kicked meanwhile. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.wake = () => {
        this.wake = undefined
        done()
      }
    })
  }
}
