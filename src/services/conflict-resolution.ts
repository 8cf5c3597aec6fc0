/**
 * `sync:conflict` from a client (protocol §6): the chosen value is
 * written as a new change (the entity's version grows by one and the change is
 * broadcast as usual), and the conflict is marked resolved. An unknown or
 * already resolved id is CONFLICT_NOT_FOUND.
 */
import { ENTITY_SPECS } from '../models/entity-schema.js'
import type { ConflictVersion, SyncChange, SyncConflict } from '../types/sync.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import { entityMap, toSyncChange } from './entity-index.js'
import { transactIndexed } from './indexed-transaction.js'
import type { SyncDocument } from './sync-document.js'
import type { UpdateCommitter } from './update-committer.js'
import type { Author } from './yjs-updates.js'
import type { PlanLimits } from '../models/plans.js'
import { checkJsonBytes } from './plan-limits.js'

export interface Resolution {
  conflictId: string
  winningVersion: 'server' | 'client' | 'merged'
  /** For `merged`: the entity data holding the conflict's field, `{ [field]: value }`. */
  mergedData?: Record<string, unknown>
}

export interface ResolvedConflict {
  conflict: SyncConflict
  update: Uint8Array | undefined
  changes: SyncChange[]
  serverTimestamp: number
  version: number
}

export async function resolveConflict(
  sync: SyncDocument,
  committer: UpdateCommitter,
  resolution: Resolution,
  author: Author,
  wantChanges: boolean,
  limits?: PlanLimits,
): Promise<ResolvedConflict> {
  const open = sync.conflicts.get(resolution.conflictId)
  if (!open) throw new SyncError(ErrorCode.CONFLICT_NOT_FOUND, `no open conflict ${resolution.conflictId}`)
  const spec = ENTITY_SPECS[open.entityType]
  const value = chosenValue(open, resolution)
  const parsed = spec.fields[open.field]?.value.safeParse(value)
  if (!parsed?.success) throw new SyncError(ErrorCode.INVALID_PAYLOAD, `mergedData.${open.field} is not a valid value`)
  // The chosen value is written again, held to the plan as a change record's data is.
  if (limits) checkJsonBytes(sync, parsed.data, limits, 'the resolved value')
  const map = entityMap(sync.doc, spec, open.entityId)
  if (!map) throw new SyncError(ErrorCode.NOT_FOUND, `${spec.type} ${open.entityId} does not exist`)

  // A plain set even when the value is unchanged: the resolution is a change of its own (version + 1).
  const { update, indexWrites } = transactIndexed(sync, { source: 'changes', deviceId: author.deviceId }, () =>
    map.set(open.field, parsed.data),
  )
  const conflict: SyncConflict = {
    ...open,
    resolved: true,
    winningVersion: resolution.winningVersion,
    ...(resolution.winningVersion === 'merged' ? { mergedData: { [open.field]: parsed.data } } : {}),
    resolvedAt: sync.clock,
  }
  sync.conflicts.delete(open.id)
  const changes = wantChanges ? indexWrites.map((w) => toSyncChange(sync, w.record, author.userId)) : []
  const serverTimestamp = sync.clock
  const version = indexWrites[0]?.record.version ?? 0
  await committer.commit(sync, { updates: update ? [update] : [], entities: indexWrites, conflicts: [conflict] })
  return { conflict, update, changes, serverTimestamp, version }
}

function chosenValue(conflict: SyncConflict, resolution: Resolution): unknown {
  switch (resolution.winningVersion) {
    case 'server':
      return (conflict.serverVersion as ConflictVersion).value
    case 'client': {
      const client = conflict.clientVersion as ConflictVersion
      if (client.collected) {
        throw new SyncError(ErrorCode.INVALID_PAYLOAD, 'the client value was collected on the device before it was sent; resolve with server or merged')
      }
      return client.value
    }
    case 'merged':
      if (!resolution.mergedData || !Object.hasOwn(resolution.mergedData, conflict.field)) {
        throw new SyncError(ErrorCode.INVALID_PAYLOAD, `mergedData must hold the field ${conflict.field}`)
      }
      return resolution.mergedData[conflict.field]
  }
}
