// The SDK's ordering of a conversation's events (client/src/ordering.ts), frame by frame: what an app receives
// when frames come twice, out of order, or after a gap. The real-socket cases are in client-faults / client-tokens.
import t from 'tap'
import { type LogEvent, SeqOrder } from '../client/src/index.ts'
import { Backoff } from '../client/src/backoff.ts'
import { expiryOf } from '../client/src/tokens.ts'

const ev = (conversation_id: string, seq: number) => ({ type: 'message_read', conversation_id, seq, data: {} }) as unknown as LogEvent
const seqs = (events: LogEvent[]) => events.map((e) => e.seq)

t.test('a conversation never seen starts at its first event; a duplicate is dropped', async (t) => {
  const order = new SeqOrder()
  t.same(seqs(order.accept(ev('c', 7))), [7])
  t.same(seqs(order.accept(ev('c', 7))), [], 'the same (conversation, seq) twice: once')
  t.same(seqs(order.accept(ev('c', 5))), [], 'an earlier one after a later one: dropped')
  t.same(seqs(order.accept(ev('d', 7))), [7], 'another conversation has its own seqs')
  t.same(order.positions(), { c: 7, d: 7 })
})

t.test('an event after a gap is held back until the gap is filled, then all come in order', async (t) => {
  const order = new SeqOrder()
  order.follow('c', 10)
  t.same(seqs(order.accept(ev('c', 13))), [], '13 waits for 11 and 12')
  t.same(seqs(order.accept(ev('c', 13))), [], 'a held event twice is held once')
  t.same(order.gaps(), ['c'], 'the gap is known (the SDK resumes from 10)')
  t.same(seqs(order.accept(ev('c', 11))), [11])
  t.same(seqs(order.accept(ev('c', 12))), [12, 13], 'the gap filled: 12, then the held 13')
  t.same(order.gaps(), [])
  t.same(order.positions(), { c: 13 })
})

t.test('a gap the server cannot fill (its resume answered without it) is passed once resumed', async (t) => {
  const order = new SeqOrder()
  order.follow('c', 1)
  order.accept(ev('c', 4))
  order.accept(ev('c', 6))
  t.same(seqs(order.skipGaps(['c', 'unknown'])), [4, 6], 'the held events, in order')
  t.same(seqs(order.accept(ev('c', 5))), [], 'and what comes late after that is a duplicate')
  order.follow('c', 3)
  t.same(order.positions(), { c: 6 }, 'follow never moves a conversation back')
})

t.test('follow past held events (the app loaded a newer state): they are dropped and what follows is delivered', async (t) => {
  const order = new SeqOrder()
  order.follow('c', 1)
  order.accept(ev('c', 3))
  order.accept(ev('c', 6))
  t.same(seqs(order.follow('c', 5)), [6], 'the held 3 is in the loaded state; 6 follows it')
  t.same(order.gaps(), [], 'nothing is left waiting (no resume asked for)')
  t.same(order.positions(), { c: 6 })
  t.same(seqs(order.follow('c', 2)), [], 'an older position changes nothing')
})

t.test('backoff: exponential ceilings with full jitter, capped, reset after a success', async (t) => {
  const top = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 1)
  t.same([1, 2, 3, 4, 5].map(() => top.next()), [100, 200, 400, 800, 1000], 'the ceilings double up to the cap')
  top.reset()
  t.equal(top.next(), 100, 'and start over after a reset')
  const jittered = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0.5)
  t.same([jittered.next(), jittered.next()], [50, 100], 'each delay is drawn below its ceiling')
})

t.test('defaults: the first delay is at most 250 ms; a token without an exp claim has no known expiry', async (t) => {
  t.ok(new Backoff().next() <= 250)
  t.equal(expiryOf('not-a-jwt'), undefined)
  const claims = Buffer.from(JSON.stringify({ exp: 1_900_000_000 })).toString('base64url')
  t.equal(expiryOf(`h.${claims}.s`), 1_900_000_000_000, 'read from exp, base64url')
})
