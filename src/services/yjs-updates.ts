/**
 * The Yjs path (protocol §§4 and 6): a device's update is decoded,
 * inspected, applied in its own transaction, checked for overwritten `manual`
 * fields (the current value is written back by the server, and a conflict
 * keeps both), indexed, and committed.
 */
import * as Y from 'yjs'
import type { SyncChange, SyncConflict } from '../types/sync.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import type { TransactionOrigin } from '../types/origins.js'
import { captureUpdates } from './capture.js'
import isEqual from 'lodash/isEqual.js'
import { newConflict } from './conflicts.js'
import { recordTouched, toSyncChange, touchedEntities } from './entity-index.js'
import { entityKey } from '../models/records.js'
import type { SyncDocument } from './sync-document.js'
import type { UpdateCommitter } from './update-committer.js'
import { decodeClientUpdate, isEmptyUpdate, MISSING_DEPENDENCIES, refuseMissingDependencies, type DecodedUpdate } from './update-validator.js'
import { trimAppliedContent } from './content-arrays.js'
import { addsNothing, inspectUpdate, type ManualOverwrite } from './yjs-inspector.js'
import { checkUpdateSchema } from './update-schema.js'
import { UpdateItems } from './update-items.js'
import type { PlanLimits } from '../models/plans.js'
import { checkDocumentBytes, checkNewClientIds, checkNewEntities, checkUpdateBytes, newEntitiesInUpdate } from './plan-limits.js'

export interface Author {
  userId: string
  deviceId: string
  /** The connection the write came by (a socket id), if any: the change feed skips it where it should. */
  origin?: string
}

export interface AppliedUpdate {
  serverTimestamp: number
  /** False for an update with nothing in it (nothing stored, nothing to relay). */
  stored: boolean
  /** Server updates that restored `manual` values: for every Yjs socket, the sender's too. */
  fixups: Uint8Array[]
  conflicts: SyncConflict[]
  /** The touched entities' change records, when asked for (there are JSON sockets to tell). */
  changes: SyncChange[]
}

/**
 * Applies the update in memory and queues its commit, synchronously; `durable`
 * settles with the commit. Synchronous, with the commit returned rather than
 * awaited, so that what only the apply needs (the decoded update, the Yjs
 * transactions, the inspection) is garbage once it returns, not held by an
 * async frame until the commit is durable: with thousands of updates
 * waiting on one group commit, that was most of the server's live heap and
 * of its time in garbage collection.
 */
export function stageYjsUpdate(
  sync: SyncDocument,
  committer: UpdateCommitter,
  update: Uint8Array,
  author: Author,
  wantChanges: boolean,
  /** The author's plan limits (none: unlimited, for tools that call this directly). */
  limits: PlanLimits | undefined,
): { applied: AppliedUpdate; durable: Promise<void> } {
  if (limits) checkUpdateBytes(update.byteLength, limits, 'the update')
  let overwrites: ManualOverwrite[]
  let decoded: DecodedUpdate
  try {
    decoded = decodeClientUpdate(update)
    if (isEmptyUpdate(decoded) || addsNothing(sync.doc, decoded)) {
      return { applied: { serverTimestamp: sync.clock, stored: false, fixups: [], conflicts: [], changes: [] }, durable: Promise.resolve() }
    }
    refuseMissingDependencies(sync.doc, decoded)
    // The update's items, indexed once for both walks.
    const items = new UpdateItems(decoded)
    const inspection = inspectUpdate(sync.doc, decoded, items)
    // After the inspector: an entity that is not a Y.Map is its INVALID_UPDATE, not a schema refusal.
    checkUpdateSchema(sync.doc, decoded, items)
    overwrites = inspection.overwrites
    if (limits) {
      // Plan limits, before anything is applied: the entities it would create or revive, the bytes it would add.
      const live = newEntitiesInUpdate(sync.doc, decoded)
      for (const [type, ids] of inspection.revived) live.set(type, (live.get(type) ?? 0) + ids.size)
      checkNewEntities(sync, live, limits)
      checkDocumentBytes(sync, update.byteLength, limits)
      checkNewClientIds(sync, decoded, limits)
    }
  } catch (cause) {
    // Nothing is applied yet: whatever went wrong reading the update, it is refused.
    if (cause instanceof SyncError) throw cause
    throw new SyncError(ErrorCode.INVALID_UPDATE, 'the update could not be read', { cause })
  }

  const transactions: Y.Transaction[] = []
  const origin: TransactionOrigin = { source: 'yjs', deviceId: author.deviceId }
  const store = sync.doc.store
  const pendingBefore = [store.pendingStructs?.update, store.pendingDs]
  try {
    Y.transact(sync.doc, (tr) => {
      transactions.push(tr)
      Y.applyUpdate(sync.doc, update, origin)
    }, origin)
    // Checked above; should Yjs still keep a part of it pending, the update is refused all the same.
    if (store.pendingStructs?.update !== pendingBefore[0] || store.pendingDs !== pendingBefore[1]) {
      throw new SyncError(ErrorCode.INVALID_UPDATE, MISSING_DEPENDENCIES)
    }
  } catch (cause) {
    // Decoded fine but failed half-way through: the document may hold part of it.
    throw refuseApplied(sync, committer, cause)
  }

  try {
    trimAppliedContent(sync.doc, decoded.structs)
  } catch {
    // Memory only: an array left as Yjs made it holds the same values. The update is applied; it is not refused for this.
  }

  let settled: ReturnType<typeof settle>
  try {
    settled = settle(sync, overwrites, transactions, author, wantChanges)
  } catch (cause) {
    // Applied in memory but not stored.
    throw refuseApplied(sync, committer, cause)
  }
  const { fixups, conflicts, changes, indexWrites } = settled
  const durable = committer.commit(sync, { updates: [update, ...fixups], entities: indexWrites, conflicts })
  return { applied: { serverTimestamp: sync.clock, stored: true, fixups, conflicts, changes }, durable }
}

/**
 * An update that failed once (part of) it was applied: the document is dropped
 * and reloaded from disk, so memory equals disk, and the update is refused.
 */
function refuseApplied(sync: SyncDocument, committer: UpdateCommitter, cause: unknown): SyncError {
  committer.abandon(sync)
  return cause instanceof SyncError ? cause : new SyncError(ErrorCode.INVALID_UPDATE, 'the update could not be applied', { cause })
}

/** After the update is applied: conflicts on `manual` fields (current values restored), then the entity index. */
function settle(sync: SyncDocument, overwrites: ManualOverwrite[], transactions: Y.Transaction[], author: Author, wantChanges: boolean) {
  const conflicts: SyncConflict[] = []
  const restore: (() => void)[] = []
  const at = Date.now()
  for (const o of overwrites) {
    if ('value' in o.client && isEqual(o.currentValue, o.client.value)) continue
    const record = sync.entities.get(entityKey(o.spec.type, o.entityId))
    conflicts.push(
      newConflict({
        userId: author.userId,
        spec: o.spec,
        entityId: o.entityId,
        field: o.field,
        record,
        serverValue: o.currentValue,
        client: o.client,
        clientVersion: record?.version ?? 0,
        clientDeviceId: author.deviceId,
        at,
      }),
    )
    // Yjs may have let the device's value win: the server keeps the current one.
    if (!isEqual(o.map.get(o.field), o.currentValue)) restore.push(() => o.map.set(o.field, o.currentValue))
  }
  const fixups =
    restore.length === 0
      ? []
      : captureUpdates(sync.doc, () =>
          Y.transact(sync.doc, (tr) => {
            transactions.push(tr)
            for (const r of restore) r()
          }, { source: 'server' } satisfies TransactionOrigin),
        )

  const touched = touchedEntities(sync.doc, transactions)
  // A manual field holding the value it held before did not change (the server kept it): its field
  // version stays, so a JSON write from a version that saw that value is not a conflict (section 6).
  for (const o of overwrites) {
    if (isEqual(o.map.get(o.field), o.currentValue)) touched.find((e) => e.spec === o.spec && e.id === o.entityId)?.fields.delete(o.field)
  }
  const indexWrites = recordTouched(sync, touched, author.deviceId)
  if (indexWrites.length === 0) sync.tick()
  for (const c of conflicts) sync.conflicts.set(c.id, c)
  const changes = wantChanges ? indexWrites.map((w) => toSyncChange(sync, w.record, author.userId)) : []
  return { fixups, conflicts, changes, indexWrites }
}
