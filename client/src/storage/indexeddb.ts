/**
 * The browser store: y-indexeddb keeps the document (it stores every update
 * of the `Y.Doc` and compacts them itself); this client's own values go in
 * its `custom` store.
 */
import * as idb from 'lib0/indexeddb'
import { IndexeddbPersistence } from 'y-indexeddb'
import type * as Y from 'yjs'
import type { LocalStore } from './store.js'

export class IndexedDbStore implements LocalStore {
  private persistence: IndexeddbPersistence | undefined
  private meta: Promise<unknown> = Promise.resolve()
  /** Values set and not yet written: the last one of a tick per key. */
  private readonly unwritten = new Map<string, unknown>()

  constructor(private readonly name: string) {}

  get origin(): unknown {
    return this.persistence
  }

  async load(doc: Y.Doc): Promise<void> {
    this.persistence = new IndexeddbPersistence(this.name, doc)
    await this.persistence.whenSynced
  }

  private get opened(): IndexeddbPersistence {
    if (!this.persistence) throw new Error('the IndexedDB store is not loaded')
    return this.persistence
  }

  /** Before `load()` too (the owner check comes first): then it opens the database for the one read. */
  async getMeta(key: string): Promise<unknown> {
    let value: unknown
    if (this.persistence) value = await this.persistence.get(key)
    else {
      // The stores y-indexeddb creates, should the database be new.
      const db = await idb.openDB(this.name, (created) => idb.createStores(created, [['updates', { autoIncrement: true }], ['custom']]))
      try {
        const [custom] = idb.transact(db, ['custom'], 'readonly')
        value = await idb.get(custom!, key)
      } finally {
        db.close()
      }
    }
    return typeof value === 'string' ? JSON.parse(value) : undefined
  }

  setMeta(key: string, value: unknown): void {
    const persistence = this.opened
    const first = this.unwritten.size === 0
    this.unwritten.set(key, value)
    if (!first) return
    this.meta = this.meta
      .then(() => new Promise((resolve) => setTimeout(resolve, 0)))
      .then(async () => {
        const values = [...this.unwritten]
        this.unwritten.clear()
        for (const [k, v] of values) await persistence.set(k, JSON.stringify(v))
      })
      .catch(() => undefined)
  }

  /** IndexedDB runs a store's transactions in order: a read of `updates` ends after every write before it. */
  async flush(): Promise<void> {
    const persistence = this.opened
    await this.meta
    if (!persistence.db) return
    const [updates] = idb.transact(persistence.db, ['updates'], 'readonly')
    await idb.count(updates!)
  }

  async close(): Promise<void> {
    if (!this.persistence) return
    await this.flush().catch(() => undefined)
    await this.persistence.destroy()
  }
}
