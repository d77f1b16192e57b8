import t from 'tap'
import { WindowCounter } from '../src/services/window-counter.ts'

// The global limit's in-memory count (RATE_LIMIT_STORE=divided): fixed windows per key, at most so many keys.
// The clock is the test's, so nothing here waits or depends on the machine's speed.

function counter(windowMs: number, capacity: number) {
  const clock = { now: 1_000_000 }
  return { clock, windows: new WindowCounter(windowMs, capacity, () => clock.now) }
}

t.test('a key counts its hits within its window, refused ones too, and starts again from one when it ends', async (t) => {
  const { clock, windows } = counter(1000, 10)
  t.same(windows.hit('a'), { count: 1, ttlMs: 1000 }, 'the first hit opens the window')
  clock.now += 400
  t.same(windows.hit('a'), { count: 2, ttlMs: 600 }, 'the window is fixed: it ends 1000 ms after its first hit')
  t.same(windows.hit('b'), { count: 1, ttlMs: 1000 }, 'another key has a window of its own')
  for (let i = 0; i < 5; i++) windows.hit('a')
  clock.now += 599
  t.same(windows.hit('a'), { count: 8, ttlMs: 1 }, 'every hit counts, up to the last millisecond')
  clock.now += 1
  t.same(windows.hit('a'), { count: 1, ttlMs: 1000 }, 'at its end a new window opens with this hit')
  clock.now += 5000
  t.same(windows.hit('b'), { count: 1, ttlMs: 1000 }, 'long after, too')
})

t.test('at most `capacity` keys are kept: the least recently hit is dropped and starts again from zero', async (t) => {
  const { windows } = counter(60_000, 3)
  windows.hit('a')
  windows.hit('a')
  windows.hit('b')
  windows.hit('c')
  windows.hit('a') // a is now the most recently hit; b the least
  windows.hit('d')
  t.equal(windows.size, 3, 'never more keys than the capacity')
  t.equal(windows.hit('a').count, 4, 'a, recently hit, kept its count')
  t.equal(windows.hit('c').count, 2, 'c kept its count')
  t.equal(windows.hit('b').count, 1, 'b, the least recently hit, was dropped: it counts from one again')
  t.equal(windows.hit('d').count, 1, 'and making room for b dropped d, by then the least recently hit')
  t.equal(windows.size, 3)
})
