/**
 * Group commit. Changes are applied to their in-memory document first and
 * queued here in the same turn; everything queued in one event-loop turn, for
 * any number of documents, is written in one atomic LevelDB batch, and while a
 * batch is being written the next one gathers. A commit's promise resolves
 * only once its batch is durable (then handlers ack and broadcast). A document
 * whose log has passed a compaction threshold is compacted inside the batch:
 * at flush time memory holds exactly what is on disk plus this batch, so its
 * encoded state replaces its whole log atomically (encoding the loaded doc is
 * linear; `Y.mergeUpdates` over thousands of small updates is not, yjs#710).
 *
 * When a batch fails, nothing in it is acknowledged, and every document it
 * touched is evicted (with its queued commits), so that it is reloaded from
 * disk: what is in memory never drifts from what is stored.
 */
import * as Y from 'yjs'
import type { AppliedChange, DeviceSyncState, SnapshotMeta, SnapshotReason, StoredConflict } from '../models/records.js'
import type { DocumentRepository, DocumentWrite } from '../repositories/document.repository.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import type { Logger } from '../utils/logger.js'
import { Metrics, secondsSince } from '../utils/metrics.js'
import { jittered } from '../utils/retry.js'
import type { IndexWrite } from './entity-index.js'
import type { SyncDocument } from './sync-document.js'

/** What one applied change stores. */
export interface Commit {
  updates?: readonly Uint8Array[]
  entities?: readonly IndexWrite[]
  conflicts?: readonly StoredConflict[]
  changes?: readonly AppliedChange[]
  devices?: readonly DeviceSyncState[]
  /** Index entries of purged entities to drop. */
  removedEntities?: readonly { entityKey: string; timestamp: number }[]
  /** Take a snapshot with this batch: its state is what the batch leaves on disk. */
  snapshot?: SnapshotRequest
  /** Compact the log with this batch, due or not (an operator's request). */
  compact?: boolean
}

/**
 * A snapshot to take with the batch: it holds exactly what the batch leaves
 * stored, never a change that was not. Nothing is encoded on the event loop:
 * once the batch is written, `log` reads the document's stored log up to the
 * batch (its iterator is made in the same turn, so a later compaction cannot
 * change what it reads), and the caller merges it off the loop. `taken` is
 * the snapshot's metadata (`bytes` left for the caller).
 */
export interface SnapshotRequest {
  id: string
  userId: string
  reason: SnapshotReason
  label?: string
  taken?: SnapshotMeta
  log?: Promise<Uint8Array[]>
}

export interface CompactionPolicy {
  compactMaxUpdates: number
  compactMaxBytes: number
}

/** A document's part of the batch being built: its new log entries start at `firstSeq`. */
interface PendingWrite {
  docId: string
  clock: number
  firstSeq: number
  updates: Uint8Array[]
  entities: IndexWrite[]
  conflicts: StoredConflict[]
  changes: AppliedChange[]
  devices: DeviceSyncState[]
  removedEntities: { entityKey: string; timestamp: number }[]
  snapshots: SnapshotRequest[]
  compact: boolean
}

interface Queued {
  doc: SyncDocument
  commit: Commit
  firstSeq: number
  resolve: () => void
  reject: (err: unknown) => void
}

export class UpdateCommitter {
  private queue: Queued[] = []
  private scheduled = false
  private writing: Promise<void> | null = null
  private readonly settledWaiters = new Map<SyncDocument, (() => void)[]>()

  constructor(
    private readonly repo: DocumentRepository,
    private readonly policy: CompactionPolicy,
    private readonly evict: (doc: SyncDocument, settled: Promise<void>) => void,
    private readonly log: Logger,
    private readonly metrics: Metrics = new Metrics(),
  ) {}

  /**
   * Queues a change already applied to `doc` in memory; resolves once it is
   * durable. Call it in the same turn as the change was applied.
   */
  commit(doc: SyncDocument, commit: Commit): Promise<void> {
    if (doc.evicted) return Promise.reject(unavailable())
    const firstSeq = doc.nextSeq
    for (const u of commit.updates ?? []) {
      doc.nextSeq++
      doc.logBytes += u.byteLength
    }
    doc.pendingWrites++
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ doc, commit, firstSeq, resolve, reject })
      this.schedule()
    }).finally(() => {
      if (--doc.pendingWrites > 0) return
      const waiters = this.settledWaiters.get(doc) ?? []
      this.settledWaiters.delete(doc)
      for (const resolve of waiters) resolve()
    })
  }

  /**
   * Drops a document whose memory can no longer be trusted. Its queued commits
   * (changes applied before the failed one) are still written, never as a
   * compaction of its memory; a reload waits until they are settled.
   */
  abandon(doc: SyncDocument): void {
    doc.evicted = true
    this.evict(doc, this.settled(doc))
  }

  /**
   * Drops a document this node may no longer write (cluster mode: its lease
   * is lost). Unlike `abandon`, its queued commits are refused now rather than
   * written: their write would fail its fence and fail the whole batch, every
   * other user's commits in it too. A batch being written already stands or
   * falls on its fence.
   */
  drop(doc: SyncDocument, cause: unknown): void {
    const refused = this.queue.filter((q) => q.doc === doc)
    this.queue = this.queue.filter((q) => q.doc !== doc)
    const err = unavailable(cause)
    for (const q of refused) q.reject(err)
    this.abandon(doc)
  }

  /** Resolves once every commit of `doc` queued or being written so far is settled. */
  settled(doc: SyncDocument): Promise<void> {
    if (doc.pendingWrites === 0) return Promise.resolve()
    return new Promise((resolve) => {
      const waiters = this.settledWaiters.get(doc)
      if (waiters) waiters.push(resolve)
      else this.settledWaiters.set(doc, [resolve])
    })
  }

  /** Compacts `doc`'s log in the next batch if it is over a threshold (as after a load). */
  compactIfDue(doc: SyncDocument): void {
    if (this.compactionDue(doc)) void this.commit(doc, {}).catch(() => undefined)
  }

  /** Resolves once everything queued so far is settled. */
  async drain(): Promise<void> {
    while (this.writing || this.queue.length > 0 || this.scheduled) {
      if (this.writing) await this.writing
      else await new Promise((resolve) => setImmediate(resolve))
    }
  }

  /**
   * Past `compactMaxUpdates` entries, or past `compactMaxBytes` appended since
   * the last compaction. Not the log's whole size: a document whose state
   * alone is over the threshold was re-encoded whole on every commit (40,000
   * clips into one document took 145 s instead of 9).
   */
  private compactionDue(doc: SyncDocument, asked = false): boolean {
    // An evicted document's memory may hold what was refused: its log is appended to, never replaced by it.
    return (
      !doc.evicted &&
      doc.logCount > 1 &&
      (asked || doc.logCount > this.policy.compactMaxUpdates || doc.logBytes - doc.baseBytes > this.policy.compactMaxBytes)
    )
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
    const started = performance.now()
    const batch = this.queue
    this.queue = []
    const writes = new Map<SyncDocument, PendingWrite>()
    for (const q of batch) this.add(writes, q)
    /** `bytes`: how the document's log size changes once the compaction is written; `state`: its new first entry. */
    const compacted: { doc: SyncDocument; upToSeq: number; state: number; bytes: number }[] = []
    const documentWrites: DocumentWrite[] = []
    const snapshotReads: { docId: string; upToSeq: number; requests: SnapshotRequest[] }[] = []
    // Memory holds exactly what is stored plus this batch (changes are applied and queued in one turn).
    // (An evicted document is never read again: nothing to publish.)
    const published = new Map(
      [...writes.keys()].filter((doc) => !doc.evicted).map((doc) => [doc, { stateVector: Y.encodeStateVector(doc.doc), clock: doc.clock }]),
    )
    for (const [doc, { updates, firstSeq, snapshots, compact, ...w }] of writes) {
      let state: Uint8Array | undefined
      let write: DocumentWrite
      if (this.compactionDue(doc, compact)) {
        state = Y.encodeStateAsUpdate(doc.doc)
        const upToSeq = doc.nextSeq - 1
        write = { ...w, compact: { firstSeq: doc.firstSeq, upToSeq, state } }
        // The log is replaced by `state`; updates queued while it is written add to it (logBytes keeps counting them).
        compacted.push({ doc, upToSeq, state: state.byteLength, bytes: state.byteLength - doc.logBytes })
      } else {
        write = updates.length > 0 ? { ...w, append: { firstSeq, updates } } : w
      }
      const entityCounts = doc.entityCounts()
      write.summary = { bytes: state ? state.byteLength : doc.logBytes, entityCounts, lastActivityAt: doc.clock }
      if (snapshots.length > 0 && !doc.evicted) {
        const takenAt = Date.now()
        for (const s of snapshots) {
          s.taken = {
            id: s.id,
            userId: s.userId,
            takenAt,
            bytes: 0,
            entityCounts,
            reason: s.reason,
            ...(s.label === undefined ? {} : { label: s.label }),
            clock: doc.clock,
          }
        }
        snapshotReads.push({ docId: doc.id, upToSeq: doc.nextSeq - 1, requests: snapshots })
      }
      documentWrites.push(write)
    }
    try {
      await this.repo.write(documentWrites)
    } catch (cause) {
      this.fail(batch, writes, cause)
      return
    }
    this.observe(batch, compacted.length, started)
    for (const [doc, state] of published) doc.published = state
    for (const c of compacted) {
      c.doc.firstSeq = c.upToSeq
      c.doc.logBytes += c.bytes
      c.doc.baseBytes = c.state
      this.log.debug({ docId: c.doc.id, bytes: c.doc.logBytes }, 'log compacted')
    }
    // In this turn, before the next batch can compact these logs.
    for (const r of snapshotReads) {
      const log = this.repo.readLogUpTo(r.docId, r.upToSeq)
      log.catch(() => undefined) // read by the snapshot's taker, which reports its failure
      for (const s of r.requests) s.log = log
    }
    for (const q of batch) q.resolve()
  }

  /** Once per batch written (never per update): its latency since `started`, its commits and update bytes, its compactions. */
  private observe(batch: readonly Queued[], compactions: number, started: number): void {
    this.metrics.commitSeconds.observe(secondsSince(started))
    this.metrics.commitBatchCommits.observe(batch.length)
    let bytes = 0
    for (const { commit } of batch) if (commit.updates) for (const u of commit.updates) bytes += u.byteLength
    this.metrics.commitBatchBytes.observe(bytes)
    if (compactions > 0) this.metrics.compactions.inc(compactions)
  }

  private add(writes: Map<SyncDocument, PendingWrite>, q: Queued): void {
    let w = writes.get(q.doc)
    if (!w) {
      w = {
        docId: q.doc.id,
        clock: 0,
        updates: [],
        firstSeq: q.firstSeq,
        entities: [],
        conflicts: [],
        changes: [],
        devices: [],
        removedEntities: [],
        snapshots: [],
        compact: false,
      }
      writes.set(q.doc, w)
    }
    const { updates = [], entities = [], conflicts = [], changes = [], devices = [], removedEntities = [], snapshot, compact } = q.commit
    w.removedEntities.push(...removedEntities)
    if (snapshot) w.snapshots.push(snapshot)
    if (compact) w.compact = true
    w.updates.push(...updates)
    w.clock = q.doc.clock
    w.entities.push(...entities)
    w.conflicts.push(...conflicts)
    w.changes.push(...changes)
    w.devices.push(...devices)
  }

  private fail(batch: Queued[], writes: Map<SyncDocument, PendingWrite>, cause: unknown): void {
    const docs = new Set(writes.keys())
    this.log.error({ err: cause, commits: batch.length, documents: docs.size }, 'commit batch failed; nothing acknowledged')
    // Later commits of these documents were applied on top of the failed ones: they go too.
    const dropped = this.queue.filter((q) => docs.has(q.doc))
    this.queue = this.queue.filter((q) => !docs.has(q.doc))
    const err = unavailable(cause)
    for (const q of [...batch, ...dropped]) q.reject(err)
    // Every commit of these documents is rejected above: they are settled once those rejections run.
    for (const doc of docs) {
      doc.evicted = true
      this.evict(doc, this.settled(doc))
    }
  }
}

function unavailable(cause?: unknown): SyncError {
  return new SyncError(ErrorCode.UNAVAILABLE, 'the change could not be stored; sync again and retry', {
    cause,
    // Every client of the failed batch is told at once: spread their retries.
    retryAfterMs: jittered(1000),
  })
}
