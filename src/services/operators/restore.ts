/**
 * Restore as a forward change (protocol §9): the live content is made equal
 * to a snapshot's by writing new changes, never by rewinding history.
 * Entities created since the snapshot are soft-deleted, entities deleted or
 * purged since are revived, fields are set back (text and lists as minimal
 * edits, so they merge), fields added since are removed. It is one server
 * transaction through the ordinary write path: versions move on, the change
 * log and every live device see it.
 *
 * The writes are made under Yjs client id 0 (`RESTORE_CLIENT`). Yjs orders
 * concurrent writes to one map key made on the same base by client id, the
 * higher one last, so a device that was offline during the restore and wrote
 * the same field over the value the restore replaced keeps its write when it
 * comes back, whatever its client id (where other writes came between, Yjs
 * orders them as any concurrent writes). Entities it created, text it typed
 * and list items it added merge as always; a write to a `manual` field whose
 * value the restore replaced is a conflict, with both values kept.
 */
import isEqual from 'lodash/isEqual.js'
import * as Y from 'yjs'
import { DELETED, DELETED_AT, type EntitySpec } from '../../models/entity-schema.js'
import { entityKey } from '../../models/records.js'
import type { RestoreCounts } from '../../types/operators.js'
import type { SyncEntityType } from '../../types/sync.js'
import { entitiesOf, entityMap, readEntity } from '../entity-index.js'
import { transactIndexed, type IndexedTransaction } from '../indexed-transaction.js'
import { writeField } from '../json-changes.js'
import type { SyncDocument } from '../sync-document.js'

/** The Yjs client id of restore writes: below every device's, so a concurrent device write wins. */
export const RESTORE_CLIENT = 0
/** The device restore writes are recorded as. */
export const RESTORE_DEVICE = 'restore'

export interface RestoreScope {
  entityType: SyncEntityType
  entityId: string
}

/** What a restore changes, per entity: counted in `RestoreCounts`. */
interface EntityRestore {
  spec: EntitySpec
  id: string
  /** The snapshot's fields, or undefined: the entity did not exist then (soft-delete it). */
  target: Record<string, unknown> | undefined
  action: 'delete' | 'revive' | 'update'
}

export interface RestorePlan {
  entities: EntityRestore[]
  counts: RestoreCounts
}

const isLive = (fields: Record<string, unknown> | undefined): boolean => fields !== undefined && fields[DELETED] !== true

/** What a restore of `current` to `snapshot` would change, within `scope`. */
export function planRestore(current: Y.Doc, snapshot: Y.Doc, scope?: RestoreScope): RestorePlan {
  const targets = new Map<string, { spec: EntitySpec; id: string; fields: Record<string, unknown> }>()
  for (const { spec, id, map } of entitiesOf(snapshot)) targets.set(entityKey(spec.type, id), { spec, id, fields: readEntity(map) })
  const nows = new Map<string, { spec: EntitySpec; id: string; fields: Record<string, unknown> }>()
  for (const { spec, id, map } of entitiesOf(current)) nows.set(entityKey(spec.type, id), { spec, id, fields: readEntity(map) })

  const entities: EntityRestore[] = []
  const counts: RestoreCounts = { deleted: 0, revived: 0, updated: 0 }
  for (const key of new Set([...targets.keys(), ...nows.keys()])) {
    const target = targets.get(key)
    const now = nows.get(key)
    const { spec, id } = (target ?? now) as { spec: EntitySpec; id: string }
    if (scope && (scope.entityType !== spec.type || scope.entityId !== id)) continue
    const wasLive = isLive(target?.fields)
    const isLiveNow = isLive(now?.fields)
    if (!wasLive && isLiveNow) {
      entities.push({ spec, id, target: target?.fields, action: 'delete' })
      counts.deleted++
    } else if (wasLive && !isLiveNow) {
      entities.push({ spec, id, target: target?.fields, action: 'revive' })
      counts.revived++
    } else if (wasLive && !isEqual(withoutSystem(target?.fields), withoutSystem(now?.fields))) {
      entities.push({ spec, id, target: target?.fields, action: 'update' })
      counts.updated++
    }
  }
  return { entities, counts }
}

const withoutSystem = (fields: Record<string, unknown> | undefined): Record<string, unknown> => {
  const { [DELETED]: _d, [DELETED_AT]: _at, ...rest } = fields ?? {}
  return rest
}

/** Writes the plan into the live document as one server transaction, indexed. */
export function applyRestore(sync: SyncDocument, plan: RestorePlan, now: number): IndexedTransaction {
  const doc = sync.doc
  const own = doc.clientID
  doc.clientID = RESTORE_CLIENT
  try {
    return transactIndexed(sync, { source: 'server', deviceId: RESTORE_DEVICE }, () => {
      for (const e of plan.entities) {
        let map = entityMap(doc, e.spec, e.id)
        if (e.action === 'delete') {
          map?.set(DELETED, true)
          map?.set(DELETED_AT, now)
          continue
        }
        const target = e.target ?? {}
        if (!map) {
          // Purged since the snapshot (or restored from another user's): a new map with its fields.
          map = new Y.Map<unknown>()
          doc.getMap<unknown>(e.spec.collection).set(e.id, map)
        }
        for (const [field, value] of Object.entries(withoutSystem(target))) writeField(map, e.spec, field, value)
        // Fields added since the snapshot go: the content is the snapshot's.
        for (const field of [...map.keys()]) if (!(field in target) && field !== DELETED && field !== DELETED_AT) map.delete(field)
        if (map.get(DELETED) === true) map.set(DELETED, false)
      }
    })
  } finally {
    doc.clientID = own
  }
}
