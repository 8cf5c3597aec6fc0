/**
 * Owns the lifecycle of loaded documents: one `SyncDocument` per user, shared
 * by all of that user's sockets. Loads are single-flight (two sockets racing
 * on first use get the same instance, and nothing is served before the load
 * finishes); a document with no sockets and no pending writes is unloaded
 * after `docIdleMs`. A failed load is never replaced by an empty document: the
 * error reaches every waiter and the next acquire tries again. An evicted
 * document (its commit failed) is dropped at once; its holders are told
 * through `onEvict` and the next acquire loads it again from disk. In cluster
 * mode a document is loaded only under its user's lease, taken at the load and
 * released once it leaves memory (unloaded, evicted, closed).
 */
import type { DocumentLeases, DocumentRepository } from '../repositories/document.repository.js'
import type { Logger } from '../utils/logger.js'
import { SyncDocument } from './sync-document.js'

interface Entry {
  refs: number
  ready: Promise<SyncDocument>
  loaded: SyncDocument | undefined
  idleTimer: NodeJS.Timeout | undefined
}

/** A reference to a user's document, taken by one socket. */
export interface DocumentLease {
  readonly document: Promise<SyncDocument>
  /** Drops the reference (once; later calls do nothing). */
  release(): void
}

export class DocumentRegistry {
  private readonly entries = new Map<string, Entry>()
  private readonly evictListeners: ((docId: string) => void)[] = []
  /** Evicted documents whose queued or in-flight writes are not settled yet: a reload waits for them. */
  private readonly settling = new Map<string, Promise<void>>()
  /** Documents an operator holds exclusively (erasure): a load waits until they are released. */
  private readonly locked = new Map<string, Promise<void>>()

  constructor(
    private readonly repo: DocumentRepository,
    private readonly options: { docIdleMs: number },
    private readonly onLoad: (doc: SyncDocument) => void,
    private readonly log: Logger,
    /** Cluster mode: a document is loaded only under its lease, released when it leaves memory. */
    private readonly leases?: DocumentLeases,
  ) {}

  /** Takes a reference on `docId`'s document, loading it on first use. */
  acquire(docId: string): DocumentLease {
    let entry = this.entries.get(docId)
    if (!entry) {
      const created: Entry = { refs: 0, ready: this.load(docId), loaded: undefined, idleTimer: undefined }
      this.entries.set(docId, created)
      created.ready.then(
        (doc) => {
          created.loaded = doc
        },
        () => {
          if (this.entries.get(docId) === created) this.entries.delete(docId)
        },
      )
      entry = created
    }
    const held = entry
    held.refs++
    clearTimeout(held.idleTimer)
    held.idleTimer = undefined
    let released = false
    return {
      document: held.ready,
      release: () => {
        if (released) return
        released = true
        held.refs--
        if (held.refs === 0 && this.entries.get(docId) === held) this.scheduleUnload(docId, held)
      },
    }
  }

  /** The loaded document, if it is in memory (for status and tests). */
  peek(docId: string): SyncDocument | undefined {
    return this.entries.get(docId)?.loaded
  }

  /** The documents in memory now. */
  *loadedDocuments(): Generator<SyncDocument> {
    for (const entry of this.entries.values()) if (entry.loaded) yield entry.loaded
  }

  get loadedCount(): number {
    return this.entries.size
  }

  /** Called with the id of every evicted document. */
  onEvict(listener: (docId: string) => void): void {
    this.evictListeners.push(listener)
  }

  /**
   * Drops a document whose in-memory state can no longer be trusted. `settled`
   * resolves once its writes already queued are settled: the next load reads
   * the disk only after that, or it would miss them (and append over them).
   */
  evict(doc: SyncDocument, settled: Promise<void> = Promise.resolve()): void {
    const entry = this.entries.get(doc.id)
    if (entry?.loaded !== doc) return
    // Its lease (cluster mode) goes once its writes are settled, before any reload takes it again.
    const waiting = settled.then(() => this.leases?.release(doc.id)).finally(() => {
      if (this.settling.get(doc.id) === waiting) this.settling.delete(doc.id)
    })
    this.settling.set(doc.id, waiting)
    clearTimeout(entry.idleTimer)
    this.entries.delete(doc.id)
    doc.doc.destroy()
    this.log.warn({ docId: doc.id }, 'document evicted; it will be reloaded from disk')
    for (const listener of this.evictListeners) listener(doc.id)
  }

  /**
   * Runs `work` (an erasure) with the document out of memory and no load
   * until it is done: a loaded copy stops taking writes, its queued ones
   * settle (`settled`), and it is dropped; a device that connects meanwhile
   * waits, then loads what `work` left. In cluster mode the user's lease is
   * held throughout, taken first if the document is not loaded here (a live
   * owner elsewhere refuses with LeaseHeldError: the request goes there).
   */
  async exclusive(docId: string, settled: (doc: SyncDocument) => Promise<void>, work: () => Promise<void>): Promise<void> {
    let release: () => void = () => {}
    this.locked.set(docId, new Promise<void>((resolve) => (release = resolve)))
    let leased = false
    try {
      const entry = this.entries.get(docId)
      if (entry) {
        this.entries.delete(docId)
        clearTimeout(entry.idleTimer)
        const doc = await entry.ready.catch(() => undefined)
        if (doc) {
          doc.evicted = true // its handlers refuse writes from now on
          await settled(doc)
          doc.doc.destroy()
          leased = this.leases !== undefined
        }
      } else {
        // Cluster mode: the work needs the user's lease like a load does (another live owner: LeaseHeldError).
        await this.leases?.take(docId)
        leased = this.leases !== undefined
      }
      await work()
    } finally {
      if (leased) await this.leases?.release(docId)
      this.locked.delete(docId)
      release()
    }
  }

  /** Unloads every document; call after the committer has drained. */
  async close(): Promise<void> {
    const entries = [...this.entries.values()]
    this.entries.clear()
    for (const e of entries) clearTimeout(e.idleTimer)
    const docs = await Promise.allSettled(entries.map((e) => e.ready))
    for (const d of docs) if (d.status === 'fulfilled') d.value.doc.destroy()
    await Promise.all(docs.flatMap((d) => (d.status === 'fulfilled' && this.leases ? [this.leases.release(d.value.id)] : [])))
  }

  private async load(docId: string): Promise<SyncDocument> {
    await this.settling.get(docId)
    await this.locked.get(docId)
    const started = performance.now()
    // Cluster mode: the lease first (another live node's: the load fails, the client is sent there), then the read.
    await this.leases?.take(docId)
    let stored: Awaited<ReturnType<DocumentRepository['read']>>
    try {
      stored = await this.repo.read(docId)
    } catch (err) {
      await this.leases?.release(docId)
      throw err
    }
    const doc = new SyncDocument(docId, stored)
    this.log.debug(
      { docId, entries: stored.log.updates.length, bytes: stored.log.bytes, ms: Math.round(performance.now() - started) },
      'document loaded',
    )
    this.onLoad(doc)
    return doc
  }

  private scheduleUnload(docId: string, entry: Entry): void {
    entry.idleTimer = setTimeout(() => {
      entry.idleTimer = undefined
      if (entry.refs > 0 || this.entries.get(docId) !== entry) return
      const doc = entry.loaded
      if (!doc || doc.pendingWrites > 0) {
        this.scheduleUnload(docId, entry) // still loading or writing: look again later
        return
      }
      this.entries.delete(docId)
      doc.doc.destroy()
      void this.leases?.release(docId)
      this.log.debug({ docId }, 'document unloaded')
    }, this.options.docIdleMs)
    entry.idleTimer.unref()
  }
}
