/**
 * The trash (protocol §9): soft-deleted entities, listed from the index,
 * revived one at a time, and purged once deleted longer than the retention
 * (`TRASH_RETENTION_DAYS`): the only hard delete besides erasing a user. A
 * purge removes the entity's map from its type map in a server transaction
 * (relayed to Yjs devices like any update) and its index entry; JSON devices
 * already had the delete.
 */
import { DELETED, DELETED_AT, ENTITY_SPECS } from '../../models/entity-schema.js'
import { entityKey } from '../../models/records.js'
import type { TrashEntry } from '../../types/operators.js'
import type { SyncEntityType } from '../../types/sync.js'
import { entityMap } from '../entity-index.js'
import { transactIndexed, type IndexedTransaction } from '../indexed-transaction.js'
import type { SyncDocument } from '../sync-document.js'

export function trashOf(sync: SyncDocument): TrashEntry[] {
  const entries: TrashEntry[] = []
  for (const record of sync.entities.values()) {
    if (!record.deleted) continue
    const deletedAt = entityMap(sync.doc, ENTITY_SPECS[record.type], record.id)?.get(DELETED_AT)
    entries.push({ entityType: record.type, entityId: record.id, deletedAt: typeof deletedAt === 'number' ? deletedAt : record.timestamp, deviceId: record.deviceId })
  }
  return entries.sort((a, b) => b.deletedAt - a.deletedAt)
}

/** Revives one trashed entity as a change of `deviceId`; undefined when it is not in the trash. */
export function restoreFromTrash(sync: SyncDocument, type: SyncEntityType, id: string, deviceId: string): IndexedTransaction | undefined {
  const map = entityMap(sync.doc, ENTITY_SPECS[type], id)
  if (map?.get(DELETED) !== true) return undefined
  return transactIndexed(sync, { source: 'server', deviceId }, () => map.set(DELETED, false))
}

/** Hard-deletes the entities deleted before `before` (ms); returns the Yjs update and the index entries dropped. */
export function purgeTrash(sync: SyncDocument, before: number): { update: Uint8Array | undefined; removed: { entityKey: string; timestamp: number }[] } {
  const expired = trashOf(sync).filter((e) => e.deletedAt < before)
  if (expired.length === 0) return { update: undefined, removed: [] }
  const removed = expired.map((e) => {
    const key = entityKey(e.entityType, e.entityId)
    return { entityKey: key, timestamp: sync.entities.get(key)?.timestamp ?? 0 }
  })
  const { update } = transactIndexed(sync, { source: 'server', deviceId: 'trash' }, () => {
    for (const e of expired) sync.doc.getMap<unknown>(ENTITY_SPECS[e.entityType].collection).delete(e.entityId)
  })
  for (const r of removed) sync.removeEntity(r.entityKey)
  return { update, removed }
}
