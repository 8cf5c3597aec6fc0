/**
 * Owns the lifecycle of loaded documents: one `SyncDocument` per user, shared
 * by all of that user's sockets. Loads are single-flight (two sockets racing
 * on first use get the same instance, and nothing is served before the load
 * finishes); a document with no sockets, no pending writes and no running
 * compaction is unloaded after `docIdleMs`. A failed load is never replaced by
 * an empty document: the error reaches every waiter and the next acquire
 * tries again.
 */
import type { UpdateLogRepository } from '../repositories/update-log.repository.js'
import type { Logger } from '../utils/logger.js'
import type { Compactor } from './compactor.js'
import { SyncDocument } from './sync-document.js'

interface Entry {
  refs: number
  ready: Promise<SyncDocument>
  loaded: SyncDocument | undefined
  idleTimer: NodeJS.Timeout | undefined
}

export class DocumentRegistry {
  private readonly entries = new Map<string, Entry>()

  constructor(
    private readonly repo: UpdateLogRepository,
    private readonly compactor: Compactor,
    private readonly options: { docIdleMs: number },
    private readonly log: Logger,
  ) {}

  /** Takes a reference on `docId`'s document, loading it on first use. */
  acquire(docId: string): Promise<SyncDocument> {
    let entry = this.entries.get(docId)
    if (!entry) {
      entry = { refs: 0, ready: this.load(docId), loaded: undefined, idleTimer: undefined }
      this.entries.set(docId, entry)
      const created = entry
      created.ready.then(
        (doc) => {
          created.loaded = doc
        },
        () => {
          if (this.entries.get(docId) === created) this.entries.delete(docId)
        },
      )
    }
    entry.refs++
    clearTimeout(entry.idleTimer)
    entry.idleTimer = undefined
    return entry.ready
  }

  /** Drops a reference taken by `acquire`. */
  release(docId: string): void {
    const entry = this.entries.get(docId)
    if (!entry || entry.refs === 0) return
    entry.refs--
    if (entry.refs === 0) this.scheduleUnload(docId, entry)
  }

  /** The loaded document, if it is in memory (for status and tests). */
  peek(docId: string): SyncDocument | undefined {
    return this.entries.get(docId)?.loaded
  }

  get loadedCount(): number {
    return this.entries.size
  }

  /** Unloads every document; call after the committer has drained. */
  async close(): Promise<void> {
    const entries = [...this.entries.values()]
    this.entries.clear()
    for (const e of entries) clearTimeout(e.idleTimer)
    await this.compactor.drain()
    const docs = await Promise.allSettled(entries.map((e) => e.ready))
    for (const d of docs) if (d.status === 'fulfilled') d.value.doc.destroy()
  }

  private async load(docId: string): Promise<SyncDocument> {
    const started = performance.now()
    const log = await this.repo.readLog(docId)
    const doc = new SyncDocument(docId, log)
    this.log.debug(
      { docId, entries: log.updates.length, bytes: log.bytes, ms: Math.round(performance.now() - started) },
      'document loaded',
    )
    this.compactor.maybeCompact(doc)
    return doc
  }

  private scheduleUnload(docId: string, entry: Entry): void {
    entry.idleTimer = setTimeout(() => {
      entry.idleTimer = undefined
      if (entry.refs > 0 || this.entries.get(docId) !== entry) return
      const doc = entry.loaded
      if (!doc || doc.pendingWrites > 0 || doc.compacting) {
        this.scheduleUnload(docId, entry) // still loading or writing: look again later
        return
      }
      this.entries.delete(docId)
      doc.doc.destroy()
      this.log.debug({ docId }, 'document unloaded')
    }, this.options.docIdleMs)
    entry.idleTimer.unref()
  }
}
