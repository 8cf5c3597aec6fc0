/**
 * From Yjs transactions to the entity index (protocol §5): which
 * entities and fields a transaction changed, their new server versions and
 * commit timestamps, and their whole current state as `SyncChange` records.
 * Works the same whatever path the change came by.
 */
import * as Y from 'yjs'
import { DELETED, ENTITY_SPECS, type EntitySpec } from '../models/entity-schema.js'
import type { EntityRecord, FieldChange } from '../models/records.js'
import { entityKey } from '../models/records.js'
import type { SyncChange } from '../types/sync.js'
import { SyncOperationType } from '../types/sync.js'
import { collectionSpecOf } from './root-types.js'
import type { SyncDocument } from './sync-document.js'

export interface TouchedEntity {
  spec: EntitySpec
  id: string
  fields: Set<string>
}

/** Entities (and their fields) changed by the given transactions. */
export function touchedEntities(doc: Y.Doc, transactions: readonly Y.Transaction[]): TouchedEntity[] {
  const touched = new Map<string, TouchedEntity>()
  const touch = (spec: EntitySpec, id: string, fields: Iterable<string>) => {
    const key = entityKey(spec.type, id)
    let t = touched.get(key)
    if (!t) touched.set(key, (t = { spec, id, fields: new Set() }))
    for (const f of fields) t.fields.add(f)
  }
  for (const tr of transactions) {
    for (const [type, keys] of tr.changed) {
      const collection = collectionSpecOf(doc, type)
      if (collection) {
        // A new (or replaced) entity map: every field it holds is new.
        for (const id of keys) {
          const map = type instanceof Y.Map ? (type.get(id ?? '') as unknown) : undefined
          if (id !== null && map instanceof Y.Map) touch(collection, id, map.keys())
        }
        continue
      }
      // Inside an entity: walk up to the entity map, remembering the field below it.
      let child: { _item: Y.Item | null } = type
      let field: string | null = null
      while (child._item) {
        const parent = child._item.parent as { _item: Y.Item | null }
        const spec = collectionSpecOf(doc, parent)
        const entityId = child._item.parentSub
        if (spec && entityId !== null) {
          if (field !== null) touch(spec, entityId, [field])
          else touch(spec, entityId, [...keys].filter((k): k is string => k !== null))
          break
        }
        field = child._item.parentSub
        child = parent
      }
    }
  }
  return [...touched.values()]
}

/** Entities in the document that the index does not know (an index lost, or written before it existed). */
export function unindexedEntities(sync: SyncDocument): TouchedEntity[] {
  const missing: TouchedEntity[] = []
  for (const { spec, id, map } of entitiesOf(sync.doc)) {
    if (!sync.entities.has(entityKey(spec.type, id))) missing.push({ spec, id, fields: new Set(map.keys()) })
  }
  return missing
}

/** Every entity map of `doc`, by type. */
export function* entitiesOf(doc: Y.Doc): Generator<{ spec: EntitySpec; id: string; map: Y.Map<unknown> }> {
  for (const spec of Object.values(ENTITY_SPECS)) {
    if (!doc.share.has(spec.collection)) continue
    for (const [id, value] of doc.getMap<unknown>(spec.collection)) {
      if (value instanceof Y.Map) yield { spec, id, map: value as Y.Map<unknown> }
    }
  }
}

/**
 * `record` with the fields that one change stamped sharing one stamp object,
 * as `recordTouched` makes them: an index read from storage has a copy per
 * field (a new clip of 8 fields: 8 objects, about 280 bytes, in every loaded
 * document's index). Stamps are never changed in place; a change makes new
 * ones. Fields stamped by one change lie side by side unless a later change
 * touched some of them; a stamp is shared with the field before it only.
 */
export function shareFieldStamps(record: EntityRecord): EntityRecord {
  let last: FieldChange | undefined
  for (const [field, stamp] of Object.entries(record.fields)) {
    if (last && stamp.version === last.version && stamp.timestamp === last.timestamp && stamp.deviceId === last.deviceId) record.fields[field] = last
    else last = stamp
  }
  return record
}

/** An index entry to store, with the timestamp whose by-time key it replaces. */
export interface IndexWrite {
  record: EntityRecord
  previousTimestamp: number | undefined
}

/**
 * Bumps the version of every touched entity and gives each its own commit
 * timestamp (N entities, N consecutive clock values). Updates `sync.entities`.
 */
export function recordTouched(sync: SyncDocument, touched: readonly TouchedEntity[], deviceId: string): IndexWrite[] {
  if (touched.length === 0) return []
  // One wall-clock reading per commit: its N entity changes get N consecutive timestamps.
  let timestamp = sync.tick(touched.length) - 1
  return touched.map(({ spec, id, fields: changed }) => {
    const key = entityKey(spec.type, id)
    const previous = sync.entities.get(key)
    const version = (previous?.version ?? 0) + 1
    timestamp++
    const fields = { ...previous?.fields }
    // One stamp for every field this change touched (see shareFieldStamps).
    const stamp: FieldChange = { version, deviceId, timestamp }
    for (const f of changed) fields[f] = stamp
    const map = entityMap(sync.doc, spec, id)
    const record: EntityRecord = {
      type: spec.type,
      id,
      version,
      fields,
      deleted: map?.get(DELETED) === true,
      timestamp,
      deviceId,
    }
    sync.setEntity(record)
    return { record, previousTimestamp: previous?.timestamp }
  })
}

export function entityMap(doc: Y.Doc, spec: EntitySpec, id: string): Y.Map<unknown> | undefined {
  const value = doc.getMap<unknown>(spec.collection).get(id)
  return value instanceof Y.Map ? value : undefined
}

/** An entity's current fields as JSON: texts as strings, lists as arrays. */
export function readEntity(map: Y.Map<unknown>): Record<string, unknown> {
  const data: Record<string, unknown> = {}
  for (const [field, value] of map) {
    data[field] = value instanceof Y.AbstractType ? (value.toJSON() as unknown) : value
  }
  return data
}

/** The change record of an entity's current state (server to client). */
export function toSyncChange(sync: SyncDocument, record: EntityRecord, userId: string, changeId?: string): SyncChange {
  const spec = ENTITY_SPECS[record.type]
  const map = entityMap(sync.doc, spec, record.id)
  const operationType = record.deleted
    ? SyncOperationType.DELETE
    : record.version === 1
      ? SyncOperationType.CREATE
      : SyncOperationType.UPDATE
  return {
    id: changeId ?? `srv:${record.type}:${record.id}:${record.version}`,
    userId,
    deviceId: record.deviceId,
    entityType: record.type,
    entityId: record.id,
    operationType,
    data: map ? readEntity(map) : {},
    timestamp: record.timestamp,
    version: record.version,
  }
}

