/**
 * The sync service every transport calls (protocol §§4–7 and 10).
 * Transport-free: it takes validated input and a loaded document, and returns
 * what the caller acknowledges. Each change is applied in memory and queued
 * for the group commit in the same turn; its promise resolves once durable,
 * and then the write is published to the change feed, which tells the user's
 * other live devices (relays, change records, conflicts). A Yjs update's
 * relays may go out earlier, once applied (`applyUpdate`).
 */
import * as Y from 'yjs'
import { PLANS, type PlanTable } from '../models/plans.js'
import type { DeviceSyncState } from '../models/records.js'
import type { DocumentRepository } from '../repositories/document.repository.js'
import type { Plan } from '../types/events.js'
import type { SyncChange, SyncConflict } from '../types/sync.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import { Metrics } from '../utils/metrics.js'
import { jittered, RESTART_RETRY_MS } from '../utils/retry.js'
import { NO_FEED, type ChangeFeed, type FeedUpdate } from './change-feed.js'
import { changeLogPage, type ChangeLogRequest, type ChangePage } from './change-log.js'
import { resolveConflict, type Resolution, type ResolvedConflict } from './conflict-resolution.js'
import type { DocumentLease, DocumentRegistry } from './document-registry.js'
import { applyJsonChange, type AppliedChangeResult, type ChangeInput } from './json-changes.js'
import { recordCompletedSync, syncStatus, type SocketSyncState } from './status.js'
import type { SyncDocument } from './sync-document.js'
import type { UpdateCommitter } from './update-committer.js'
import { checkStateVector } from './update-validator.js'
import { ConflictCommits } from './conflict-commits.js'
import { LateRelays } from './late-relays.js'
import { toSyncChange, type IndexWrite } from './entity-index.js'
import { stageYjsUpdate, type AppliedUpdate, type Author } from './yjs-updates.js'

export interface YjsDiff {
  /** Exactly what a holder of the given state vector lacks. */
  update: Uint8Array
  /** The server's state vector. */
  stateVector: Uint8Array
  serverTimestamp: number
}

/** Device id on the updates the server itself makes (values restored after a Yjs conflict). */
export const SERVER_DEVICE = 'server'

export class SyncService {
  private closing = false
  private feed: ChangeFeed = NO_FEED
  private readonly lateRelays = new LateRelays()
  private readonly conflictCommits = new ConflictCommits()

  constructor(
    private readonly registry: DocumentRegistry,
    private readonly committer: UpdateCommitter,
    private readonly repo: DocumentRepository,
    private readonly plans: PlanTable = PLANS,
    private readonly metrics: Metrics = new Metrics(),
    private readonly options: { relayBeforeDurable: boolean } = { relayBeforeDurable: true },
  ) {}

  /** Where committed writes are published from now on (the transport that holds the devices). */
  publishTo(feed: ChangeFeed): void {
    this.feed = feed
  }

  /** Refuses new changes from now on and resolves once every accepted one is durable and settled. */
  async drain(): Promise<void> {
    this.closing = true
    await this.committer.drain()
  }

  openDocument(userId: string): DocumentLease {
    return this.registry.acquire(userId)
  }

  /**
   * The diff for a device whose document has state vector `stateVector`, once
   * the commits of the user's updates that raised a conflict are settled
   * (conflict-commits.ts says why). Rejects `UNAVAILABLE` if a commit failed
   * meanwhile (the document is being reloaded), or if the user's conflicts
   * kept coming.
   */
  async diff(doc: SyncDocument, userId: string, stateVector: Uint8Array): Promise<YjsDiff> {
    checkStateVector(stateVector)
    if (!(await this.conflictCommits.settled(userId))) {
      throw new SyncError(ErrorCode.UNAVAILABLE, "this user's conflicts are still being stored; sync again", { retryAfterMs: jittered(100) })
    }
    if (doc.evicted) throw new SyncError(ErrorCode.UNAVAILABLE, 'the document is being reloaded; sync again', { retryAfterMs: jittered(100) })
    return {
      update: Y.encodeStateAsUpdate(doc.doc, stateVector),
      stateVector: Y.encodeStateVector(doc.doc),
      serverTimestamp: doc.clock,
    }
  }

  /**
   * Applies a Yjs update within the limits of the author's `plan` (models/plans.ts).
   * The user's other Yjs devices get it; every Yjs device gets the values the server wrote back.
   * The promise resolves once durable, and change records and conflicts go out then.
   * The updates are relayed once applied (`relayBeforeDurable`), unless the
   * update raised a conflict or an earlier write of the user still waits to be
   * relayed (late-relays.ts): then once durable. A conflict's write-back and
   * record are stored together before any device holds the write-back: a
   * device that held it and the update, resent after a failed commit, would
   * no longer read as a conflict, and the author's value would be lost.
   */
  async applyUpdate(doc: SyncDocument, update: Uint8Array, author: Author, plan: Plan = 'free'): Promise<AppliedUpdate> {
    this.assertWritable(doc)
    const { applied, durable } = stageYjsUpdate(doc, this.committer, update, author, this.wantsChanges(author), this.plans[plan])
    if (!applied.stored) return applied
    const updates: FeedUpdate[] = [
      { update, deviceId: author.deviceId, fromOrigin: true },
      ...applied.fixups.map((fixup) => ({ update: fixup, deviceId: SERVER_DEVICE, fromOrigin: false })),
    ]
    if (applied.conflicts.length > 0) this.conflictCommits.track(author.userId, durable)
    const early = this.options.relayBeforeDurable && applied.conflicts.length === 0 && !this.lateRelays.pending(author.userId)
    const published = () => {
      this.metrics.yjsWrites++
      this.publish(author, applied.serverTimestamp, applied, early ? [] : updates)
    }
    if (!early) return this.lateRelays.after(author.userId, durable, published).then(() => applied)
    this.feed.relay({ userId: author.userId, origin: author.origin, serverTimestamp: applied.serverTimestamp, updates })
    // Not through LateRelays: nothing of the user waits, and a later write's publish follows its own commit,
    // which settles with or after this one; this path from the commit to the publish is the shortest.
    // Returned, not awaited: no frame of this function waits through the commit (a burst's updates all
    // wait through the same scavenges).
    return durable.then(() => {
      published()
      return applied
    })
  }

  /** Applies a change record within the limits of the author's `plan` (models/plans.ts). */
  async applyChange(doc: SyncDocument, change: ChangeInput, author: Author, plan: Plan = 'free'): Promise<AppliedChangeResult> {
    this.assertWritable(doc)
    const applied = applyJsonChange(doc, this.committer, change, author, this.wantsChanges(author), this.plans[plan])
    return this.lateRelays.after(author.userId, applied, (a) => {
      if (a.duplicate) return
      this.metrics.jsonWrites++
      this.publish(author, a.result.serverTimestamp, a, this.serverMade(author, a.update))
    })
  }

  async resolveConflict(doc: SyncDocument, resolution: Resolution, author: Author, plan: Plan = 'free'): Promise<ResolvedConflict> {
    this.assertWritable(doc)
    const resolved = resolveConflict(doc, this.committer, resolution, author, this.wantsChanges(author), this.plans[plan])
    return this.lateRelays.after(author.userId, resolved, ({ changes, conflict, serverTimestamp, update }) => {
      this.publish(author, serverTimestamp, { changes, conflicts: [conflict] }, this.serverMade(author, update))
    })
  }

  changePage(doc: SyncDocument, userId: string, request: ChangeLogRequest): Promise<ChangePage> {
    return changeLogPage(doc, this.repo, userId, request)
  }

  /** Records a completed sync; it is stored with the next commit (a failure only loses the record). */
  completeSync(doc: SyncDocument, state: DeviceSyncState): void {
    if (this.closing || doc.evicted) return
    recordCompletedSync(doc, this.committer, { ...state, lastSeenAt: Date.now() }).catch(() => undefined)
  }

  /** The user's unresolved conflicts, oldest first. */
  openConflicts(doc: SyncDocument): SyncConflict[] {
    return [...doc.conflicts.values()].sort((a, b) => a.timestamp - b.timestamp)
  }

  status(doc: SyncDocument, userId: string, deviceId: string, socket: SocketSyncState) {
    return syncStatus(doc, this.repo, userId, deviceId, socket)
  }

  private wantsChanges(author: Author): boolean {
    return this.feed.wantsChanges(author.userId, author.origin)
  }

  /** An update the server made from a change record: every Yjs device lacks it, the author's socket too. */
  private serverMade(author: Author, update: Uint8Array | undefined): FeedUpdate[] {
    return update ? [{ update, deviceId: author.deviceId, fromOrigin: false }] : []
  }

  private publish(
    author: Author,
    serverTimestamp: number,
    written: { changes: SyncChange[]; conflicts: SyncConflict[] },
    updates: FeedUpdate[],
  ): void {
    const { changes, conflicts } = written
    for (const c of conflicts) (c.resolved ? this.metrics.conflictsResolved : this.metrics.conflictsOpened).inc()
    this.feed.publish({ userId: author.userId, origin: author.origin, serverTimestamp, updates, changes, conflicts })
  }

  /**
   * Commits a server-made write (an operator's) and, once durable, publishes
   * it to the change feed: its update to every Yjs device, change records to
   * every JSON device.
   */
  async commitAndPublish(
    doc: SyncDocument,
    author: Author,
    serverTimestamp: number,
    update: Uint8Array | undefined,
    indexWrites: IndexWrite[],
    removedEntities: { entityKey: string; timestamp: number }[] = [],
  ): Promise<void> {
    const changes = this.wantsChanges(author) ? indexWrites.map((w) => toSyncChange(doc, w.record, author.userId)) : []
    const durable = this.committer.commit(doc, { updates: update ? [update] : [], entities: indexWrites, removedEntities })
    await this.lateRelays.after(author.userId, durable, () => {
      this.publish(author, serverTimestamp, { changes, conflicts: [] }, this.serverMade(author, update))
    })
  }

  /** Refuses writes while the server drains, and to a document being reloaded. */
  assertWritable(doc: SyncDocument): void {
    if (this.closing) {
      throw new SyncError(ErrorCode.UNAVAILABLE, 'the server is shutting down; resend after reconnecting', {
        retryAfterMs: jittered(RESTART_RETRY_MS),
      })
    }
    if (doc.evicted) {
      throw new SyncError(ErrorCode.UNAVAILABLE, 'the document is being reloaded; sync again', { retryAfterMs: 100 })
    }
    if (!this.clusterReachable()) {
      throw new SyncError(ErrorCode.UNAVAILABLE, 'this node has lost its cluster (Redis); retry shortly', { retryAfterMs: jittered(CLUSTER_RETRY_MS) })
    }
  }

  /** Cluster mode: writes are refused while `reachable` says the cluster's Redis is not. */
  refuseWritesUnless(reachable: () => boolean): void {
    this.clusterReachable = reachable
  }
  private clusterReachable: () => boolean = () => true
}

/** The retry hint of writes refused while the cluster's Redis is unreachable. */
const CLUSTER_RETRY_MS = 2000
