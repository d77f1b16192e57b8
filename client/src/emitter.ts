// A small typed event emitter: the SDK runs in browsers too, so not node:events.
type Listener<T> = (payload: T) => void

export class Emitter<Events extends object> {
  private listeners = new Map<keyof Events, Set<Listener<never>>>()

  /** Calls `fn` on each `type`; returns the function that stops it. */
  on<K extends keyof Events>(type: K, fn: Listener<Events[K]>): () => void {
    let set = this.listeners.get(type)
    if (!set) this.listeners.set(type, (set = new Set()))
    set.add(fn as Listener<never>)
    return () => this.off(type, fn)
  }

  off<K extends keyof Events>(type: K, fn: Listener<Events[K]>): void {
    this.listeners.get(type)?.delete(fn as Listener<never>)
  }

  /** Resolves with the next `type` whose payload passes `test`. */
  next<K extends keyof Events>(type: K, test: (payload: Events[K]) => boolean = () => true): Promise<Events[K]> {
    return new Promise((resolve) => {
      const stop = this.on(type, (payload) => {
        if (!test(payload)) return
        stop()
        resolve(payload)
      })
    })
  }

  protected emit<K extends keyof Events>(type: K, payload: Events[K]): void {
    for (const fn of [...(this.listeners.get(type) ?? [])]) (fn as Listener<Events[K]>)(payload)
  }
}
