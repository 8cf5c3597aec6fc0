/**
 * Reads a decoded Yjs update against the current document, before it is
 * applied (protocol §§3 and 6):
 * - an update that replaces or deletes an entity's map is refused (it would
 *   silently drop another device's concurrent edits to that entity);
 * - a write to a `manual` field whose origin is not the field's current entry
 *   was made without seeing the current value: a conflict candidate;
 * - a write of `_deleted` other than `true` into a soft-deleted entity revives
 *   it: it counts against the plan's live entities like a new one.
 *
 * A decoded item carries its parent only when it has no left or right origin;
 * otherwise the parent is the origin's, found in the document or, for a chain
 * of writes inside the same update, in the update itself.
 */
import * as Y from 'yjs'
import { DELETED, specOfCollection, type EntitySpec } from '../models/entity-schema.js'
import type { SyncEntityType } from '../types/sync.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import type { ClientValue } from './conflicts.js'
import { collectionSpecOf } from './root-types.js'
import { UpdateItems } from './update-items.js'

export interface ManualOverwrite {
  spec: EntitySpec
  entityId: string
  field: string
  /** The entity map, as it is in the document. */
  map: Y.Map<unknown>
  /** The value the field holds before the update. */
  currentValue: unknown
  /** The value the update writes, or `collected` when the device had already discarded it. */
  client: ClientValue
}

export interface Inspection {
  overwrites: ManualOverwrite[]
  /** Soft-deleted entities the update makes live again, per type. */
  revived: Map<SyncEntityType, Set<string>>
}

type Decoded = ReturnType<typeof Y.decodeUpdate>
/** Where an item is written: its parent type (when in the document), the entity collection that is (if one), and its key. */
type Parent = { type: Y.AbstractType<Y.YEvent<never>> | undefined; collection: EntitySpec | undefined; key: string | null }

export function inspectUpdate(doc: Y.Doc, decoded: Decoded, items: UpdateItems = new UpdateItems(decoded)): Inspection {
  const store = doc.store
  const known = (id: Y.ID) => id.clock < Y.getState(store, id.client)
  const findInUpdate = (id: Y.ID): Y.Item | undefined => items.at(id)
  // The item of this update written right after a given one (the next write to the same key).
  const successor = new Map<string, Y.Item>()
  for (const s of decoded.structs) if (s instanceof Y.Item && s.origin) successor.set(`${s.origin.client}:${s.origin.clock}`, s)
  const lastWrite = (item: Y.Item): Y.Item => {
    let last = item
    for (let n = 0, next; n < 1024 && (next = successor.get(`${last.id.client}:${last.id.clock + last.length - 1}`)); n++) last = next
    return last
  }

  // Memoized: items of one update chain through each other's origins, and resolving every item's chain
  // afresh was quadratic (a 2 MB update of 2,000 text runs took 20 s to inspect).
  const parents = new Map<Y.Item, Parent | undefined>()
  const parentOf = (item: Y.Item, depth = 0): Parent | undefined => {
    if (parents.has(item)) return parents.get(item)
    const parent = resolveParent(item, depth)
    parents.set(item, parent)
    return parent
  }
  const resolveParent = (item: Y.Item, depth: number): Parent | undefined => {
    if (item.parent !== null) {
      if (typeof item.parent === 'string') return { type: undefined, collection: specOfCollection(item.parent), key: item.parentSub }
      const p = item.parent as unknown
      if (p instanceof Y.ID) {
        if (!known(p)) return undefined // a type created in this update: nothing there to conflict with
        const holder = Y.getItem(store, p)
        const type = holder instanceof Y.Item && holder.content instanceof Y.ContentType ? holder.content.type : undefined
        return { type: type as Parent['type'], collection: undefined, key: item.parentSub }
      }
      return undefined
    }
    const originId = item.origin ?? item.rightOrigin
    if (!originId || depth > 64) return undefined
    if (known(originId)) {
      const origin = Y.getItem(store, originId)
      if (!(origin instanceof Y.Item)) return undefined
      const type = origin.parent as Parent['type']
      return { type, collection: collectionSpecOf(doc, type), key: origin.parentSub }
    }
    const origin = findInUpdate(originId)
    return origin ? parentOf(origin, depth + 1) : undefined
  }

  const overwrites: ManualOverwrite[] = []
  const revived = new Map<SyncEntityType, Set<string>>()
  for (const s of decoded.structs) {
    if (!(s instanceof Y.Item) || known(s.id)) continue
    const parent = parentOf(s)
    if (!parent || parent.key === null) continue
    const collection = parent.collection
    if (collection) {
      // A write to a top-level collection's key: a new entity, or a replacement of an existing one.
      const existing = doc.getMap<unknown>(collection.collection).get(parent.key)
      if (existing !== undefined) {
        throw new SyncError(ErrorCode.INVALID_UPDATE, `the update replaces ${collection.type} ${parent.key}; entities are never replaced or removed`)
      }
      if (!(s.content instanceof Y.ContentType && s.content.type instanceof Y.Map)) {
        throw new SyncError(ErrorCode.INVALID_UPDATE, `${collection.type} ${parent.key} must be a Y.Map of its fields (docs/protocol.md, The document)`)
      }
      continue
    }
    const entity = entityOf(doc, parent.type)
    if (!entity) continue
    const field = parent.key
    // Only the update's first write of the key is checked (later ones follow it); its value is the last write's.
    if (field === DELETED && entity.map.get(DELETED) === true && !(s.origin && !known(s.origin))) {
      if (lastWrite(s).content.getContent()[0] !== true) {
        let ids = revived.get(entity.spec.type)
        if (!ids) revived.set(entity.spec.type, (ids = new Set()))
        ids.add(entity.id)
      }
      continue
    }
    if (entity.spec.fields[field]?.kind !== 'manual') continue
    const current = (entity.map as unknown as { _map: Map<string, Y.Item> })._map.get(field)
    if (!current || current.deleted) continue
    // Written right after the current entry: the writer saw it, and this is an ordinary update.
    if (s.origin && s.origin.client === current.id.client && s.origin.clock === current.id.clock + current.length - 1) continue
    if (s.origin && !known(s.origin)) continue // after another write of this same update: only the first one counts
    overwrites.push({
      spec: entity.spec,
      entityId: entity.id,
      field,
      map: entity.map,
      currentValue: entity.map.get(field),
      client: clientValue(lastWrite(s)),
    })
  }
  refuseEntityDeletes(doc, decoded)
  return { overwrites, revived }
}

/**
 * The device's value is its last write of this update: earlier ones were
 * overwritten (and garbage-collected) on the device, so they carry no content.
 * That last write itself carries none when it had lost to a concurrent write
 * on the device before the update was encoded (a device that applied the
 * server's diff first, protocol §4): Yjs deleted and collected it.
 */
function clientValue(item: Y.Item): ClientValue {
  return item.content instanceof Y.ContentDeleted ? { collected: true } : { value: item.content.getContent()[0] }
}

/**
 * The update holds nothing the document lacks: every struct is known and
 * every deletion already done. A reconnecting device's reply to the server's
 * state vector always carries its whole delete set, so this is common.
 */
export function addsNothing(doc: Y.Doc, decoded: Decoded): boolean {
  for (const s of decoded.structs) {
    if (!(s instanceof Y.Skip) && s.id.clock + s.length > Y.getState(doc.store, s.id.client)) return false
  }
  for (const [client, ranges] of decoded.ds.clients) {
    const structs = doc.store.clients.get(client)
    const state = Y.getState(doc.store, client)
    for (const { clock, len } of ranges) {
      if (!structs || clock + len > state) return false
      for (let i = Y.findIndexSS(structs, clock); i < structs.length; i++) {
        const s = structs[i]
        if (!s || s.id.clock >= clock + len) break
        if (!s.deleted) return false
      }
    }
  }
  return true
}

/** The entity whose map `type` is, if it is one. */
function entityOf(doc: Y.Doc, type: Parent['type']): { spec: EntitySpec; id: string; map: Y.Map<unknown> } | undefined {
  const item = type?._item
  if (!item || !(type instanceof Y.Map) || item.parentSub === null) return undefined
  const spec = collectionSpecOf(doc, item.parent)
  return spec ? { spec, id: item.parentSub, map: type as Y.Map<unknown> } : undefined
}

function refuseEntityDeletes(doc: Y.Doc, decoded: Decoded): void {
  for (const [client, ranges] of decoded.ds.clients) {
    const structs = doc.store.clients.get(client)
    if (!structs) continue
    for (const { clock, len } of ranges) {
      const state = Y.getState(doc.store, client)
      if (clock >= state) continue
      let i = Y.findIndexSS(structs, clock)
      for (; i < structs.length; i++) {
        const s = structs[i]
        if (!s || s.id.clock >= clock + len) break
        if (!(s instanceof Y.Item) || s.deleted || s.parentSub === null) continue
        const spec = collectionSpecOf(doc, s.parent)
        if (spec && s.content instanceof Y.ContentType) {
          throw new SyncError(ErrorCode.INVALID_UPDATE, `the update removes ${spec.type} ${s.parentSub}; delete entities softly (_deleted)`)
        }
      }
    }
  }
}

