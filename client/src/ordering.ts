// Each conversation's events in seq order, each once: duplicates (a replay overlapping live frames, or a
// second socket) are dropped by (conversation_id, seq), and an event after a gap waits until the gap is filled.
import type { LogEvent } from './types.ts'

interface Stream {
  /** The last seq delivered; undefined until the first event of a conversation never seen before. */
  last: number | undefined
  held: Map<number, LogEvent>
}

export class SeqOrder {
  private streams = new Map<string, Stream>()

  /**
   * Starts (or moves forward) a conversation at `lastSeq`: its next event to deliver is lastSeq + 1. Held events
   * up to it are dropped (the caller's state has them); returns those now deliverable after it.
   */
  follow(conversationId: string, lastSeq: number): LogEvent[] {
    const s = this.stream(conversationId)
    if (s.last !== undefined && lastSeq <= s.last) return []
    s.last = lastSeq
    for (const seq of s.held.keys()) if (seq <= lastSeq) s.held.delete(seq)
    return this.drain(s)
  }

  /** The last seq delivered of every conversation seen: what `resume` sends. */
  positions(): Record<string, number> {
    const out: Record<string, number> = {}
    for (const [id, s] of this.streams) if (s.last !== undefined) out[id] = s.last
    return out
  }

  /** Takes one event; returns those now deliverable, in order (none if it was a duplicate or is held back). */
  accept(event: LogEvent): LogEvent[] {
    const s = this.stream(event.conversation_id)
    // The first event of a conversation nobody followed starts it: there is nothing earlier to wait for.
    s.last ??= event.seq - 1
    if (event.seq <= s.last || s.held.has(event.seq)) return []
    s.held.set(event.seq, event)
    return this.drain(s)
  }

  /** Conversations with an event held back behind a gap. */
  gaps(): string[] {
    return [...this.streams].filter(([, s]) => s.held.size > 0).map(([id]) => id)
  }

  /**
   * After a `resume` answered: what is still missing will not come (the server replays every event you may see),
   * so the held events of `conversationIds` are delivered past their gap.
   */
  skipGaps(conversationIds: Iterable<string>): LogEvent[] {
    const out: LogEvent[] = []
    for (const id of conversationIds) {
      const s = this.streams.get(id)
      while (s && s.held.size > 0) {
        s.last = Math.min(...s.held.keys()) - 1
        out.push(...this.drain(s))
      }
    }
    return out
  }

  private drain(s: Stream): LogEvent[] {
    const out: LogEvent[] = []
    for (let next = s.held.get(s.last! + 1); next; next = s.held.get(s.last! + 1)) {
      s.held.delete(next.seq)
      s.last = next.seq
      out.push(next)
    }
    return out
  }

  private stream(id: string): Stream {
    let s = this.streams.get(id)
    if (!s) this.streams.set(id, (s = { last: undefined, held: new Map() }))
    return s
  }
}
