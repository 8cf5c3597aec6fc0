/**
 * The Node store: a LevelDB directory (`level`) holding the document as a
 * log of Yjs updates, compacted into one when it grows, plus JSON values.
 * Each tick's updates and values go in one atomic batch, updates first, so
 * the pending-edit counters never count an edit the log lacks.
 *
 * Keys: `u!<seq, 12 digits>` an update; `m!<name>` a value (JSON).
 * Written without fsync: an edit survives the app being killed, not a power
 * cut (as any app's local database).
 */
import { Level } from 'level'
import * as Y from 'yjs'
import { SyncClientError } from '../errors.js'
import type { LocalStore } from './store.js'

/** Past this many stored updates the log is replaced by the document's state. */
const COMPACT_AFTER = 500
const updateKey = (seq: number): string => `u!${String(seq).padStart(12, '0')}`
const encoder = new TextEncoder()
const decoder = new TextDecoder()

export class LevelStore implements LocalStore {
  readonly origin = this
  private doc: Y.Doc | undefined
  private nextSeq = 0
  private stored = 0
  /** Updates not yet written, by key. */
  private queue: { type: 'put'; key: string; value: Uint8Array }[] = []
  /** Values set and not yet written: the last one of a tick per name, encoded when written. */
  private readonly meta = new Map<string, unknown>()
  private writing: Promise<void> = Promise.resolve()
  private scheduled = false
  private failure: SyncClientError | undefined

  private constructor(private readonly db: Level<string, Uint8Array>) {}

  static async open(dir: string): Promise<LevelStore> {
    const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
    try {
      await db.open()
    } catch (err) {
      throw new SyncClientError('STORAGE', `cannot open the local store ${dir}: ${(err as Error).cause?.toString() ?? String(err)}`)
    }
    return new LevelStore(db)
  }

  async load(doc: Y.Doc): Promise<void> {
    const updates: Uint8Array[] = []
    let last = -1
    for await (const [key, value] of this.db.iterator({ gte: 'u!', lt: 'u"' })) {
      updates.push(value)
      last = Number(key.slice(2))
    }
    this.nextSeq = last + 1
    this.stored = updates.length
    // Edits made before the store opened are in the document only: store them first.
    const early = doc.store.clients.size > 0 ? Y.encodeStateAsUpdate(doc) : undefined
    if (updates.length > 0) Y.applyUpdate(doc, Y.mergeUpdates(updates), this)
    this.doc = doc
    doc.on('update', this.onUpdate)
    if (early) this.put(updateKey(this.nextSeq++), early)
    if (this.stored > COMPACT_AFTER) this.compact()
  }

  private readonly onUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin !== this) this.put(updateKey(this.nextSeq++), update)
  }

  async getMeta(key: string): Promise<unknown> {
    const value = await this.db.get(`m!${key}`)
    return value === undefined ? undefined : JSON.parse(decoder.decode(value))
  }

  /** The last value set in a tick is the one written (the outbox sets its counters at every edit). */
  setMeta(key: string, value: unknown): void {
    this.meta.set(key, value)
    this.schedule()
  }

  flush(): Promise<void> {
    this.write()
    return this.writing.then(() => {
      if (this.failure) throw this.failure
    })
  }

  async close(): Promise<void> {
    this.doc?.off('update', this.onUpdate)
    await this.flush().catch(() => undefined)
    await this.db.close()
  }

  private put(key: string, value: Uint8Array): void {
    if (++this.stored > COMPACT_AFTER * 2) {
      this.compact()
      return
    }
    this.queue.push({ type: 'put', key, value })
    this.schedule()
  }

  private schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setTimeout(() => this.write(), 0)
  }

  /** The whole log replaced by one update: the document's state, written before the old entries go. */
  private compact(): void {
    const doc = this.doc
    if (!doc) return
    const key = updateKey(this.nextSeq++)
    this.queue = [{ type: 'put', key, value: Y.encodeStateAsUpdate(doc) }]
    this.stored = 1
    this.write()
    this.writing = this.writing.then(() => this.db.clear({ gte: 'u!', lt: key }).catch((err: unknown) => this.failed(err)))
  }

  private write(): void {
    this.scheduled = false
    if (this.queue.length === 0 && this.meta.size === 0) return
    // Values after the updates of the same batch: the counters never count an edit the log lacks.
    const ops = this.queue
    for (const [name, value] of this.meta) ops.push({ type: 'put', key: `m!${name}`, value: encoder.encode(JSON.stringify(value)) })
    this.meta.clear()
    this.queue = []
    this.writing = this.writing.then(() =>
      this.db.batch(ops).catch((err: unknown) => this.failed(err)),
    )
  }

  /** A failed write or clear: later writes still run; `flush()` (whenStored) reports it. */
  private failed(err: unknown): void {
    this.failure = new SyncClientError('STORAGE', `the local store failed: ${String(err)}`)
  }
}
