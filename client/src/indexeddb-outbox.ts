// The outbox in a browser's IndexedDB: a send made offline survives a reload or a closed tab, and is sent (once,
// by its client_id) when the page comes back. An entry is sent as whoever is signed in, so give each account its
// own database (name it after the user id).
import type { OutboxEntry, OutboxStorage } from './outbox.ts'

// What is used of IndexedDB, declared here because the SDK builds without the DOM library.
interface Request<T> { result: T; error: unknown; onsuccess: (() => void) | null; onerror: (() => void) | null }
interface Store { getAll(): Request<OutboxEntry[]>; put(entry: OutboxEntry): Request<unknown>; delete(key: string): Request<unknown> }
interface Transaction { objectStore(name: string): Store; error: unknown; oncomplete: (() => void) | null; onerror: (() => void) | null; onabort: (() => void) | null }
interface Database { transaction(store: string, mode: 'readonly' | 'readwrite'): Transaction; createObjectStore(name: string, opts: { keyPath: string }): unknown; close(): void }
interface OpenRequest extends Request<Database> { onupgradeneeded: (() => void) | null }
export interface IndexedDbFactory { open(name: string, version: number): OpenRequest }

const STORE = 'entries'

export class IndexedDbOutbox implements OutboxStorage {
  private readonly db: Promise<Database>

  constructor(readonly name: string, factory: IndexedDbFactory = (globalThis as { indexedDB?: IndexedDbFactory }).indexedDB!) {
    this.db = new Promise((resolve, reject) => {
      const open = factory.open(name, 1)
      open.onupgradeneeded = () => open.result.createObjectStore(STORE, { keyPath: 'client_id' })
      open.onsuccess = () => resolve(open.result)
      open.onerror = () => reject(open.error)
    })
  }

  all(): Promise<OutboxEntry[]> {
    return this.run('readonly', (s) => s.getAll())
  }

  async put(entry: OutboxEntry): Promise<void> {
    await this.run('readwrite', (s) => s.put(entry))
  }

  async remove(clientId: string): Promise<void> {
    await this.run('readwrite', (s) => s.delete(clientId))
  }

  async close(): Promise<void> {
    ;(await this.db).close()
  }

  // Settled when the transaction completes, not when its request succeeds: a put is then on disk.
  private async run<T>(mode: 'readonly' | 'readwrite', fn: (store: Store) => Request<T>): Promise<T> {
    const db = await this.db
    return new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode)
      const request = fn(tx.objectStore(STORE))
      tx.oncomplete = () => resolve(request.result)
      tx.onerror = tx.onabort = () => reject(tx.error)
    })
  }
}
