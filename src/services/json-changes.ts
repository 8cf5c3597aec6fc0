/**
 * The JSON path (protocol §§5 and 6): one change record becomes one Yjs
 * transaction on the user's document. `text` fields are written as minimal
 * edits of their Y.Text and `list` fields as minimal edits of their Y.Array
 * (lib0's diffs), so a JSON client's edit still merges with concurrent Yjs
 * edits. A `manual` field written from a version older than the field's last
 * change, with a different value, is a conflict: the current value stays and
 * both are recorded. A change id already applied is acknowledged again with
 * the same result and not applied twice.
 */
import { simpleDiffArray, simpleDiffString } from 'lib0/diff'
import * as Y from 'yjs'
import { DELETED, DELETED_AT, ENTITY_SPECS, type EntitySpec, type FieldSpec } from '../models/entity-schema.js'
import type { ChangeResult } from '../models/records.js'
import { entityKey } from '../models/records.js'
import type { SyncChange, SyncConflict, SyncEntityType } from '../types/sync.js'
import { SyncOperationType } from '../types/sync.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import isEqual from 'lodash/isEqual.js'
import { newConflict } from './conflicts.js'
import { entityMap, toSyncChange } from './entity-index.js'
import { transactIndexed } from './indexed-transaction.js'
import type { SyncDocument } from './sync-document.js'
import type { UpdateCommitter } from './update-committer.js'
import type { Author } from './yjs-updates.js'
import type { PlanLimits } from '../models/plans.js'
import { checkJsonBytes, checkNewEntities } from './plan-limits.js'

/** A validated client change (see websockets/payloads.ts). */
export interface ChangeInput {
  id: string
  entityType: SyncEntityType
  entityId: string
  operationType: SyncOperationType
  data: Record<string, unknown>
  /** The entity version the client last saw (0 for none). */
  version: number
}

export interface AppliedChangeResult {
  result: ChangeResult
  /** The Yjs update the change became (none when it changed nothing), for Yjs sockets. */
  update: Uint8Array | undefined
  conflicts: SyncConflict[]
  /** Change records of what it touched, when asked for. */
  changes: SyncChange[]
  /** The change id was applied before: this is the earlier result and nothing else happened. */
  duplicate: boolean
}

export async function applyJsonChange(
  sync: SyncDocument,
  committer: UpdateCommitter,
  change: ChangeInput,
  author: Author,
  wantChanges: boolean,
  /** The author's plan limits (none: unlimited). */
  limits?: PlanLimits,
): Promise<AppliedChangeResult> {
  // In flight first: `apply` records the id before its commit is durable, and a resend must not be
  // acknowledged before the first one is (if that write fails, both are refused).
  const inflight = sync.inflightChanges.get(change.id)
  if (inflight) return { ...(await inflight), update: undefined, conflicts: [], changes: [], duplicate: true }
  const seen = sync.changes.get(change.id)
  if (seen) return { result: seen.result, update: undefined, conflicts: [], changes: [], duplicate: true }

  const promise = apply({ sync, committer, change, author, wantChanges, limits })
  sync.inflightChanges.set(change.id, promise)
  try {
    return await promise
  } finally {
    sync.inflightChanges.delete(change.id)
  }
}

async function apply({ sync, committer, change, author, wantChanges, limits }: {
  sync: SyncDocument
  committer: UpdateCommitter
  change: ChangeInput
  author: Author
  wantChanges: boolean
  limits: PlanLimits | undefined
}): Promise<AppliedChangeResult> {
  const spec = ENTITY_SPECS[change.entityType]
  const key = entityKey(spec.type, change.entityId)
  const record = sync.entities.get(key)
  const existing = entityMap(sync.doc, spec, change.entityId)
  if (!existing && change.operationType !== SyncOperationType.CREATE) {
    throw new SyncError(ErrorCode.NOT_FOUND, `${spec.type} ${change.entityId} does not exist`)
  }
  if (limits) {
    // Plan limits, before anything is applied.
    checkJsonBytes(sync, change.data, limits, 'the change data')
    const creates = change.operationType === SyncOperationType.CREATE && (!existing || existing.get(DELETED) === true)
    if (creates) checkNewEntities(sync, new Map([[spec.type, 1]]), limits)
  }

  const conflicts: SyncConflict[] = []
  const writes: [string, unknown][] = []
  const at = Date.now()
  for (const [field, value] of Object.entries(change.data)) {
    const fieldSpec = spec.fields[field]
    if (!fieldSpec) continue
    if (existing && fieldSpec.kind === 'manual' && record && change.version < (record.fields[field]?.version ?? 0)) {
      const current = existing.get(field)
      if (!isEqual(current, value)) {
        conflicts.push(
          newConflict({
            userId: author.userId,
            spec,
            entityId: change.entityId,
            field,
            record,
            serverValue: current,
            client: { value },
            clientVersion: change.version,
            clientDeviceId: author.deviceId,
            at,
          }),
        )
        continue
      }
    }
    writes.push([field, value])
  }
  if (change.operationType === SyncOperationType.DELETE) writes.push([DELETED, true], [DELETED_AT, at])
  else if (existing?.get(DELETED) === true && change.operationType === SyncOperationType.CREATE) writes.push([DELETED, false])

  const { update, indexWrites } = transactIndexed(sync, { source: 'changes', deviceId: author.deviceId }, () => {
    const map = existing ?? new Y.Map<unknown>()
    if (!existing) sync.doc.getMap<unknown>(spec.collection).set(change.entityId, map)
    for (const [field, value] of writes) writeField(map, spec, field, value)
  })
  for (const c of conflicts) sync.conflicts.set(c.id, c)
  const after = sync.entities.get(key)
  const result: ChangeResult = {
    entityId: change.entityId,
    version: after?.version ?? 0,
    serverTimestamp: sync.clock,
    conflicts: conflicts.map((c) => c.id),
  }
  const applied = { changeId: change.id, result, appliedAt: at }
  sync.changes.set(change.id, applied)
  const changes = wantChanges ? indexWrites.map((w) => toSyncChange(sync, w.record, author.userId, change.id)) : []
  await committer.commit(sync, {
    updates: update ? [update] : [],
    entities: indexWrites,
    conflicts,
    changes: [applied],
  })
  return { result, update, conflicts, changes, duplicate: false }
}

/** Writes one field the way its kind merges: whole values, or minimal text and list edits. */
export function writeField(map: Y.Map<unknown>, spec: EntitySpec, field: string, value: unknown): void {
  const kind: FieldSpec['kind'] = spec.fields[field]?.kind ?? 'lww'
  const current = map.get(field)
  if (kind === 'text' && typeof value === 'string') {
    if (!(current instanceof Y.Text)) {
      map.set(field, new Y.Text(value))
      return
    }
    const d = simpleDiffString(current.toJSON(), value)
    if (d.remove > 0) current.delete(d.index, d.remove)
    if (d.insert.length > 0) current.insert(d.index, d.insert)
    return
  }
  if (kind === 'list' && Array.isArray(value)) {
    if (!(current instanceof Y.Array)) {
      map.set(field, Y.Array.from(value as never[]))
      return
    }
    const d = simpleDiffArray(current.toArray() as unknown[], value as unknown[], (a, b) => isEqual(a, b))
    if (d.remove > 0) current.delete(d.index, d.remove)
    if (d.insert.length > 0) current.insert(d.index, d.insert)
    return
  }
  if (!isEqual(current, value)) map.set(field, value)
}
