import type { TokenBucket } from '../utils/token-bucket.js'
import * as Y from 'yjs'
import type { AppliedChange, ChangeResult, DeviceSyncState, EntityCounts, EntityRecord, StoredConflict } from '../models/records.js'
import { entityKey } from '../models/records.js'
import type { StoredDocument } from '../repositories/document.repository.js'
import { SyncEntityType } from '../types/sync.js'
import { trimAllContent } from './content-arrays.js'
import { shareFieldStamps } from './entity-index.js'
import { newServerDoc } from './ydoc.js'

/**
 * One user's loaded document with its entity index, open conflicts and
 * applied change ids. Changes are applied here first, in memory, and queued
 * for the next group commit in the same turn; a document whose commit fails
 * is evicted and reloaded from disk, so memory never drifts from what is
 * stored.
 */
export class SyncDocument {
  readonly doc = newServerDoc()
  /** Sequence the next appended log entry gets. */
  nextSeq: number
  firstSeq: number
  /** Bytes of the log entries `firstSeq..nextSeq - 1` (queued ones included). */
  logBytes: number
  /** Bytes of the log's first entry (after a compaction, the document's state): `logBytes` minus it is what was appended since. */
  baseBytes: number
  /** The commit clock (ms): strictly increasing, persisted with every commit. */
  clock: number
  /** The entity index by `type:id`; written through `setEntity`, which keeps `liveCount` right. */
  readonly entities = new Map<string, EntityRecord>()
  /** Live (not deleted) entities per type, kept with the index (plan limits read it). */
  private readonly live = new Map<SyncEntityType, number>()
  /** Unresolved conflicts by id. */
  readonly conflicts = new Map<string, StoredConflict>()
  /** Applied change ids (idempotency), by change id. */
  readonly changes = new Map<string, AppliedChange>()
  /** Devices' last completed syncs, filled as they are read or recorded. */
  readonly devices = new Map<string, DeviceSyncState>()
  /** JSON changes being applied, by change id: a resend in flight waits for the first. */
  readonly inflightChanges = new Map<string, Promise<{ result: ChangeResult }>>()
  /** Commits queued or being written; a document is not unloaded while any are. */
  pendingWrites = 0
  /** Set when a commit failed: the document must not be used any more. */
  evicted = false
  /**
   * What the user's live sockets have been sent: the state (and clock) of the
   * last commit written, whose relays went out as it settled. Changes applied
   * after it are in memory but not yet relayed, so a socket that pauses holds
   * this, not the memory (or it would miss them on resume). Set at load and by
   * the committer.
   */
  published: { stateVector: Uint8Array; clock: number }
  /** New Yjs client ids the document may still take (`PlanLimits.newClientIds`), made on first use. */
  newClientIds: TokenBucket | undefined

  constructor(
    readonly id: string,
    stored: StoredDocument,
  ) {
    this.firstSeq = stored.log.firstSeq
    this.nextSeq = stored.log.nextSeq
    this.logBytes = stored.log.bytes
    this.baseBytes = stored.log.updates[0]?.byteLength ?? 0
    this.clock = stored.clock
    for (const r of stored.entities) this.setEntity(shareFieldStamps(r))
    for (const c of stored.conflicts) this.conflicts.set(c.id, c)
    for (const c of stored.changes) this.changes.set(c.changeId, c)
    Y.transact(
      this.doc,
      () => {
        for (const update of stored.log.updates) Y.applyUpdate(this.doc, update)
      },
      { source: 'storage' },
    )
    trimAllContent(this.doc)
    this.published = { stateVector: Y.encodeStateVector(this.doc), clock: this.clock }
  }

  /** Live (not soft-deleted) entities of `type`. */
  liveCount(type: SyncEntityType): number {
    return this.live.get(type) ?? 0
  }

  /** Live entities of every type. */
  entityCounts(): EntityCounts {
    const counts = {} as EntityCounts
    for (const type of Object.values(SyncEntityType)) counts[type] = this.liveCount(type)
    return counts
  }

  /** Drops a purged entity from the index (it was soft-deleted, so the live counts stay). */
  removeEntity(key: string): void {
    const record = this.entities.get(key)
    if (record && !record.deleted) this.live.set(record.type, this.liveCount(record.type) - 1)
    this.entities.delete(key)
  }

  /** Sets an entity's index record, counting live entities per type. */
  setEntity(record: EntityRecord): void {
    const key = entityKey(record.type, record.id)
    const previous = this.entities.get(key)
    const delta = (record.deleted ? 0 : 1) - (previous && !previous.deleted ? 1 : 0)
    if (delta !== 0) this.live.set(record.type, this.liveCount(record.type) + delta)
    this.entities.set(key, record)
  }

  get logCount(): number {
    return this.nextSeq - this.firstSeq
  }

  /**
   * Takes `count` consecutive commit clock values and returns the first:
   * `max(wall clock, previous + 1)`, then one more per entity change (protocol §5).
   */
  tick(count = 1): number {
    const first = Math.max(Date.now(), this.clock + 1)
    this.clock = first + Math.max(count, 1) - 1
    return first
  }
}
