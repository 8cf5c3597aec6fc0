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
 * A document whose log is larger than `compactOffloadBytes` is not encoded
 * in the batch, where it held every other user's commit and events (a
 * 20,000-clip document: about 30 ms a time; see COMPACT_OFFLOAD_BYTES for
 * the default): once a batch is written, its
 * stored log up to that batch is read and merged in a worker thread, and the
 * merged state replaces those entries in a later batch (entries appended
 * meanwhile stay after it), unless the log was compacted some other way in
 * between.
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
import type { ResumeFrom } from './operators/state-worker.js'
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
  /** Logs larger than this (bytes) are compacted off the event loop (default 32 KiB). */
  compactOffloadBytes?: number
}

/**
 * Smaller logs are encoded in the batch (0.7-2.7 ms for a 32 KiB state on an
 * idle core), which spares the worker reading the log back and applying it
 * to a fresh document. At 256 KiB an import's first compaction (a state of
 * 160-200 KB, at COMPACT_MAX_UPDATES=1000) was encoded in its batch and held
 * the loop 39-57 ms while other users' events waited.
 */
const COMPACT_OFFLOAD_BYTES = 32 << 10

/** A log merged off the event loop, to replace its entries `firstSeq..upToSeq` in the next batch of the document. */
interface MergedLog {
  firstSeq: number
  upToSeq: number
  state: Uint8Array
  /** Bytes of the entries it replaces. */
  replaced: number
}

/** A compaction written with a batch; `bytes`: how the log's size changes once it is written. */
interface Compaction {
  compact: NonNullable<DocumentWrite['compact']>
  bytes: number
  /** Encoded from the loaded document: it covers the batch's own updates (none is appended). */
  inMemory: boolean
}

/** A due compaction to merge off the event loop once the batch is written. */
const OFFLOAD = 'offload'

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
  /** Documents being compacted off the event loop (read and merge running, or the result waiting for a batch). */
  private readonly compacting = new WeakMap<SyncDocument, MergedLog | undefined>()
  private readonly merges = new Set<Promise<void>>()
  private readonly logKeys = new WeakMap<SyncDocument, string>()
  private nextLogKey = 0

  constructor(
    private readonly repo: DocumentRepository,
    private readonly policy: CompactionPolicy,
    private readonly evict: (doc: SyncDocument, settled: Promise<void>) => void,
    private readonly log: Logger,
    private readonly metrics: Metrics = new Metrics(),
    /** Merges a stored log into one state off the event loop (operators/state-worker.ts); without it, every compaction is in the batch. */
    private readonly mergeLog?: (updates: readonly Uint8Array[], resume: ResumeFrom) => Promise<Uint8Array>,
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
    const release = this.hold(doc)
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ doc, commit, firstSeq, resolve, reject })
      this.schedule()
    }).finally(release)
  }

  /** Writes of every document queued or being written (what a new commit waits behind). */
  get pendingWrites(): number {
    return this.pending
  }
  private pending = 0

  /** Counts work on `doc` as a pending write until the returned function is called: the document is not unloaded meanwhile. */
  private hold(doc: SyncDocument): () => void {
    doc.pendingWrites++
    this.pending++
    return () => {
      this.pending--
      if (--doc.pendingWrites > 0) return
      const waiters = this.settledWaiters.get(doc) ?? []
      this.settledWaiters.delete(doc)
      for (const resolve of waiters) resolve()
    }
  }

  /**
   * Drops a document whose memory can no longer be trusted. Its queued commits
   * (changes applied before the failed one) are still written, never as a
   * compaction of its memory; a reload waits until they are settled.
   */
  abandon(doc: SyncDocument): void {
    doc.evicted = true
    this.compacting.delete(doc)
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
    while (this.writing || this.queue.length > 0 || this.scheduled || this.merges.size > 0) {
      if (this.writing) await this.writing
      else if (this.merges.size > 0) await Promise.all(this.merges)
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
      (asked || !this.compacting.has(doc)) &&
      (asked || doc.logCount > this.policy.compactMaxUpdates || doc.logBytes - doc.baseBytes > this.policy.compactMaxBytes)
    )
  }

  private schedule(): void {
    if (this.scheduled || this.writing) return
    this.scheduled = true
    // Two check phases on: after the turn's relays and other output have left (the write coalescer
    // releases them in the check phase after the commit was queued). Handing LevelDB a batch wakes a
    // thread that takes the CPU for the write's own work; on a busy or pinned core, output still held
    // waited behind it (0.2 ms per commit on the bench, one edit at a time).
    setImmediate(() =>
      setImmediate(() => {
        this.scheduled = false
        this.writing = this.flush().finally(() => {
          this.writing = null
          if (this.queue.length > 0) this.schedule()
        })
      }),
    )
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
    /** Documents whose compaction is to be merged off the loop once this batch is written. */
    const offloaded: { doc: SyncDocument; upToSeq: number }[] = []
    for (const [doc, { updates, firstSeq, snapshots, compact, ...w }] of writes) {
      const planned = this.compactionOf(doc, compact)
      if (planned === OFFLOAD) offloaded.push({ doc, upToSeq: doc.nextSeq - 1 }) // what this batch leaves stored
      const compaction = planned === OFFLOAD ? undefined : planned
      let write: DocumentWrite = updates.length > 0 ? { ...w, append: { firstSeq, updates } } : w
      if (compaction) {
        // Encoded from memory it covers this batch's updates too; merged off the loop, they stay after it.
        write = { ...(compaction.inMemory ? w : write), compact: compaction.compact }
        compacted.push({ doc, upToSeq: compaction.compact.upToSeq, state: compaction.compact.state.byteLength, bytes: compaction.bytes })
      }
      const entityCounts = doc.entityCounts()
      write.summary = { bytes: doc.logBytes + (compaction?.bytes ?? 0), entityCounts, lastActivityAt: doc.clock }
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
    for (const { doc, upToSeq } of offloaded) this.mergeOffLoop(doc, upToSeq)
    for (const r of snapshotReads) {
      const log = this.repo.readLogUpTo(r.docId, r.upToSeq)
      log.catch(() => undefined) // read by the snapshot's taker, which reports its failure
      for (const s of r.requests) s.log = log
    }
    for (const q of batch) q.resolve()
  }

  /**
   * What `doc`'s part of the batch does to its log: nothing; OFFLOAD (a due
   * compaction merged off the loop once the batch is written); or a compaction
   * written with it, the state merged off the loop earlier, or encoded from
   * memory now (`inMemory`: up to this batch's last update).
   */
  private compactionOf(
    doc: SyncDocument,
    asked: boolean,
  ): undefined | typeof OFFLOAD | Compaction {
    let merged = this.compacting.get(doc)
    // A state merged from entries another compaction has replaced since is of no use.
    if (merged && (merged.firstSeq !== doc.firstSeq || asked || doc.evicted)) {
      this.compacting.delete(doc)
      merged = undefined
    }
    if (merged) {
      this.compacting.delete(doc)
      const { firstSeq, upToSeq, state } = merged
      return { compact: { firstSeq, upToSeq, state }, bytes: state.byteLength - merged.replaced, inMemory: false }
    }
    if (!this.compactionDue(doc, asked)) return undefined
    if (!asked && this.offloads(doc)) return OFFLOAD
    const state = Y.encodeStateAsUpdate(doc.doc)
    // The log is replaced by `state`; updates queued while it is written add to it (logBytes keeps counting them).
    return { compact: { firstSeq: doc.firstSeq, upToSeq: doc.nextSeq - 1, state }, bytes: state.byteLength - doc.logBytes, inMemory: true }
  }

  /**
   * Names `doc`'s log for the worker to resume its merges from: one name per
   * loaded document, so that an erased and recreated (or reloaded) log, whose
   * sequences may repeat, is never resumed from another's state.
   */
  private logKey(doc: SyncDocument): string {
    let key = this.logKeys.get(doc)
    if (key === undefined) this.logKeys.set(doc, (key = `${doc.id}#${this.nextLogKey++}`))
    return key
  }

  /** Whether `doc`'s due compaction is merged off the loop: a log over `compactOffloadBytes`, with a worker to merge it. */
  private offloads(doc: SyncDocument): boolean {
    return this.mergeLog !== undefined && doc.logBytes > (this.policy.compactOffloadBytes ?? COMPACT_OFFLOAD_BYTES)
  }

  /**
   * Reads `doc`'s stored log up to `upToSeq` (in this turn, right after the
   * batch that wrote it) and merges it in the worker; the state is written
   * with the document's next batch (one is queued for it). A failure leaves
   * the log as it is, to be compacted when it is due again.
   */
  private mergeOffLoop(doc: SyncDocument, upToSeq: number): void {
    const mergeLog = this.mergeLog
    if (!mergeLog || doc.evicted) return
    const firstSeq = doc.firstSeq
    this.compacting.set(doc, undefined)
    // Held until the merged state's commit is queued (which holds it in turn): an idle unload waits.
    const release = this.hold(doc)
    const read = this.repo.readLogUpTo(doc.id, upToSeq)
    const merge: Promise<void> = read
      .then(async (updates) => {
        const replaced = updates.reduce((sum, u) => sum + u.byteLength, 0)
        const state = await mergeLog(updates, { key: this.logKey(doc), firstSeq, upToSeq })
        if (doc.evicted || doc.firstSeq !== firstSeq) {
          this.compacting.delete(doc)
          return
        }
        this.compacting.set(doc, { firstSeq, upToSeq, state, replaced })
        void this.commit(doc, {}).catch(() => undefined) // a batch to write it in
      })
      .catch((err: unknown) => {
        this.compacting.delete(doc)
        this.log.warn({ err, docId: doc.id }, 'compaction off the event loop failed; the log stays as it is')
      })
      .finally(() => {
        this.merges.delete(merge)
        release()
      })
    this.merges.add(merge)
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
