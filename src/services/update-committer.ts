/**
 * Group commit of Yjs updates. Updates submitted in the same event-loop turn,
 * for any number of documents, are written in one atomic LevelDB batch; while
 * a batch is being written the next one gathers, so under load a batch grows
 * to whatever arrived during the previous write. Only after the batch is
 * durable are its updates applied to the in-memory documents and their
 * submitters resolved (acks, relays): an acknowledged update is on disk, and
 * a failed write leaves every document exactly as it is on disk.
 */
import * as Y from 'yjs'
import type { UpdateLogRepository, LogAppend } from '../repositories/update-log.repository.js'
import type { TransactionOrigin } from '../types/origins.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import type { Logger } from '../utils/logger.js'
import type { Compactor } from './compactor.js'
import type { SyncDocument } from './sync-document.js'

interface Submitted {
  doc: SyncDocument
  update: Uint8Array
  socketId: string
  resolve: (serverTimestamp: number) => void
  reject: (err: unknown) => void
}

interface DocBatch {
  doc: SyncDocument
  items: Submitted[]
  timestamps: number[]
  append: LogAppend
}

export class UpdateCommitter {
  private queue: Submitted[] = []
  private scheduled = false
  private writing: Promise<void> | null = null

  constructor(
    private readonly repo: UpdateLogRepository,
    private readonly compactor: Compactor,
    private readonly log: Logger,
  ) {}

  /** Resolves with the update's commit timestamp once it is durable and applied. */
  submit(doc: SyncDocument, update: Uint8Array, socketId: string): Promise<number> {
    doc.pendingWrites++
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ doc, update, socketId, resolve, reject })
      this.schedule()
    }).finally(() => {
      doc.pendingWrites--
    })
  }

  /** Resolves once everything submitted so far is settled. */
  async drain(): Promise<void> {
    while (this.writing || this.queue.length > 0 || this.scheduled) {
      if (this.writing) await this.writing
      else await new Promise((resolve) => setImmediate(resolve))
    }
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.writing = this.flush().finally(() => {
        this.writing = null
        if (this.queue.length > 0) this.schedule()
      })
    })
  }

  private async flush(): Promise<void> {
    const submitted = this.queue
    this.queue = []
    const batches = this.groupByDocument(submitted)
    try {
      await this.repo.append(batches.map((b) => b.append))
    } catch (cause) {
      for (const b of batches) b.doc.nextSeq = b.append.firstSeq
      this.log.error({ err: cause, updates: submitted.length }, 'update batch write failed; nothing acknowledged')
      const err = new SyncError(ErrorCode.UNAVAILABLE, 'the update could not be stored; retry later', { cause })
      for (const s of submitted) s.reject(err)
      return
    }
    for (const b of batches) this.apply(b)
  }

  private groupByDocument(submitted: Submitted[]): DocBatch[] {
    const byDoc = new Map<SyncDocument, DocBatch>()
    for (const s of submitted) {
      let b = byDoc.get(s.doc)
      if (!b) {
        b = { doc: s.doc, items: [], timestamps: [], append: { docId: s.doc.id, firstSeq: 0, updates: [], clock: 0 } }
        byDoc.set(s.doc, b)
      }
      b.items.push(s)
    }
    for (const b of byDoc.values()) {
      b.append.firstSeq = b.doc.nextSeq
      b.doc.nextSeq += b.items.length
      b.append.updates = b.items.map((s) => s.update)
      b.timestamps = b.items.map(() => b.doc.tick())
      b.append.clock = b.doc.clock
    }
    return [...byDoc.values()]
  }

  /** Applies a durable batch to its document in one transaction, then settles its submitters. */
  private apply(b: DocBatch): void {
    const { doc, items } = b
    const origin: TransactionOrigin = { source: 'commit', socketIds: items.map((s) => s.socketId) }
    const failed = new Set<Submitted>()
    Y.transact(
      doc.doc,
      () => {
        for (const s of items) {
          try {
            Y.applyUpdate(doc.doc, s.update)
          } catch (err) {
            // Validation decodes every update before it is submitted, so this is a bug, not bad input.
            this.log.error({ err, docId: doc.id }, 'a stored update failed to apply')
            failed.add(s)
          }
        }
      },
      origin,
    )
    doc.appliedSeq = b.append.firstSeq + items.length - 1
    for (const s of items) doc.logBytes += s.update.byteLength
    items.forEach((s, i) => {
      if (failed.has(s)) s.reject(new SyncError(ErrorCode.INTERNAL, 'the update could not be applied'))
      else s.resolve(b.timestamps[i] ?? doc.clock)
    })
    this.compactor.maybeCompact(doc)
  }
}
