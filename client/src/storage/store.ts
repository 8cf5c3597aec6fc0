/**
 * Where a client keeps its document between app runs: every update of the
 * `Y.Doc` (local edits and what the server sent), and a few values of its
 * own (the owner's user id, the pending-edit counters).
 */
import type * as Y from 'yjs'

export interface LocalStore {
  /** The origin of the updates `load` applies: they are neither local edits nor the server's. */
  readonly origin: unknown
  /** Applies what is stored to `doc`, and from then on stores each of its updates. */
  load(doc: Y.Doc): Promise<void>
  getMeta(key: string): Promise<unknown>
  /** Stored with the updates of the same tick, after them. */
  setMeta(key: string, value: unknown): void
  /** Resolves once everything given so far is stored. */
  flush(): Promise<void>
  close(): Promise<void>
}

/**
 * - `{ dir }`: a LevelDB directory (Node), one per user and app;
 * - `'indexeddb'` (browsers, y-indexeddb), in a database named `name`
 *   (default `superclip-sync:<userId>`);
 * - `'memory'`: nothing survives the process.
 */
export type StorageOption = { dir: string } | 'indexeddb' | { indexeddb: string } | 'memory'

export async function openStore(option: StorageOption, userId: string): Promise<LocalStore> {
  if (option === 'memory') return new MemoryStore()
  if (option === 'indexeddb' || 'indexeddb' in option) {
    const { IndexedDbStore } = await import('./indexeddb.js')
    return new IndexedDbStore(option === 'indexeddb' ? `superclip-sync:${userId}` : option.indexeddb)
  }
  const { LevelStore } = await import('./level.js')
  return LevelStore.open(option.dir)
}

export class MemoryStore implements LocalStore {
  readonly origin = this
  private readonly meta = new Map<string, unknown>()
  load(): Promise<void> {
    return Promise.resolve()
  }
  getMeta(key: string): Promise<unknown> {
    return Promise.resolve(this.meta.get(key))
  }
  setMeta(key: string, value: unknown): void {
    this.meta.set(key, value)
  }
  flush(): Promise<void> {
    return Promise.resolve()
  }
  close(): Promise<void> {
    return Promise.resolve()
  }
}
