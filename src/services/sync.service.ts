/**
 * The sync service handlers call (PROTOCOL sections 4–7). Transport-free: it
 * takes validated input and a loaded document, and returns what the handler
 * acknowledges and broadcasts. Each change is applied in memory and queued
 * for the group commit in the same turn; its promise resolves once durable.
 */
import * as Y from 'yjs'
import { PLANS, type PlanTable } from '../models/plans.js'
import type { DeviceSyncState } from '../models/records.js'
import type { DocumentRepository } from '../repositories/document.repository.js'
import type { Plan } from '../types/events.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import { jittered, RESTART_RETRY_MS } from '../utils/retry.js'
import { changeLogPage, type ChangeLogRequest, type ChangePage } from './change-log.js'
import { resolveConflict, type Resolution, type ResolvedConflict } from './conflict-resolution.js'
import type { DocumentLease, DocumentRegistry } from './document-registry.js'
import { applyJsonChange, type AppliedChangeResult, type ChangeInput } from './json-changes.js'
import { recordCompletedSync, syncStatus, type SocketSyncState } from './status.js'
import type { SyncDocument } from './sync-document.js'
import type { UpdateCommitter } from './update-committer.js'
import { checkStateVector } from './update-validator.js'
import { applyYjsUpdate, type AppliedUpdate, type Author } from './yjs-updates.js'

export interface YjsDiff {
  /** Exactly what a holder of the given state vector lacks. */
  update: Uint8Array
  /** The server's state vector. */
  stateVector: Uint8Array
  serverTimestamp: number
}

/** Clients told the server is shutting down wait about this long before reconnecting. */

export class SyncService {
  private closing = false

  constructor(
    private readonly registry: DocumentRegistry,
    private readonly committer: UpdateCommitter,
    private readonly repo: DocumentRepository,
    private readonly plans: PlanTable = PLANS,
  ) {}

  /** Refuses new changes from now on and resolves once every accepted one is durable and settled. */
  async drain(): Promise<void> {
    this.closing = true
    await this.committer.drain()
  }

  openDocument(userId: string): DocumentLease {
    return this.registry.acquire(userId)
  }

  /** The diff for a device whose document has state vector `stateVector`. */
  diff(doc: SyncDocument, stateVector: Uint8Array): YjsDiff {
    checkStateVector(stateVector)
    return {
      update: Y.encodeStateAsUpdate(doc.doc, stateVector),
      stateVector: Y.encodeStateVector(doc.doc),
      serverTimestamp: doc.clock,
    }
  }

  /** Applies a Yjs update within the limits of the author's `plan` (models/plans.ts). */
  applyUpdate(doc: SyncDocument, update: Uint8Array, author: Author, wantChanges: boolean, plan: Plan = 'free'): Promise<AppliedUpdate> {
    this.assertWritable(doc)
    return applyYjsUpdate(doc, this.committer, update, author, wantChanges, this.plans[plan])
  }

  /** Applies a change record within the limits of the author's `plan` (models/plans.ts). */
  applyChange(
    doc: SyncDocument,
    change: ChangeInput,
    author: Author,
    wantChanges: boolean,
    plan: Plan = 'free',
  ): Promise<AppliedChangeResult> {
    this.assertWritable(doc)
    return applyJsonChange(doc, this.committer, change, author, wantChanges, this.plans[plan])
  }

  resolveConflict(
    doc: SyncDocument,
    resolution: Resolution,
    author: Author,
    wantChanges: boolean,
    plan: Plan = 'free',
  ): Promise<ResolvedConflict> {
    this.assertWritable(doc)
    return resolveConflict(doc, this.committer, resolution, author, wantChanges, this.plans[plan])
  }

  changePage(doc: SyncDocument, userId: string, request: ChangeLogRequest): Promise<ChangePage> {
    return changeLogPage(doc, this.repo, userId, request)
  }

  /** Records a completed sync; it is stored with the next commit (a failure only loses the record). */
  completeSync(doc: SyncDocument, state: DeviceSyncState): void {
    if (this.closing || doc.evicted) return
    recordCompletedSync(doc, this.committer, state).catch(() => undefined)
  }

  status(doc: SyncDocument, userId: string, deviceId: string, socket: SocketSyncState) {
    return syncStatus(doc, this.repo, userId, deviceId, socket)
  }

  private assertWritable(doc: SyncDocument): void {
    if (this.closing) {
      throw new SyncError(ErrorCode.UNAVAILABLE, 'the server is shutting down; resend after reconnecting', {
        retryAfterMs: jittered(RESTART_RETRY_MS),
      })
    }
    if (doc.evicted) {
      throw new SyncError(ErrorCode.UNAVAILABLE, 'the document is being reloaded; sync again', { retryAfterMs: 100 })
    }
  }
}
