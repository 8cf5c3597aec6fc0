/**
 * Holds a device's Yjs update to the entity schema (protocol §3) before it
 * is applied: everything it adds must have a place in the document's layout,
 * with a value of the right kind and type. A JSON change is held to the same
 * schema by its parser (websockets/payloads.ts); without this check a Yjs
 * device could put any value, field or top-level type into the document, and
 * JSON devices would receive it. Refused: `INVALID_PAYLOAD`, naming the place.
 *
 * Where an added item sits is the chain of keys from a top-level type down to
 * it: `[collection] entityId field` for a field, one level more (no key) for
 * an element of a text or list field. An item written with an origin carries
 * neither parent nor key: it sits where its origin does, found in the document
 * or earlier in the update.
 */
import * as Y from 'yjs'
import { specOfCollection, type EntitySpec } from '../models/entity-schema.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import { rootNameOf } from './root-types.js'
import { UpdateItems } from './update-items.js'
import type { DecodedUpdate } from './update-validator.js'

type Content = Y.Item['content']

/** A top-level type and the keys below it (null for an element of a list or text). */
interface Place {
  root: string | undefined
  keys: (string | null)[]
}

const refuse = (message: string): never => {
  throw new SyncError(ErrorCode.INVALID_PAYLOAD, message)
}

export function checkUpdateSchema(doc: Y.Doc, decoded: DecodedUpdate, items: UpdateItems = new UpdateItems(decoded)): void {
  const store = doc.store
  const known = (id: Y.ID): boolean => id.clock < Y.getState(store, id.client)
  /** The item holding clock `id`, in the document or in the update (items may be runs). */
  const itemAt = (id: Y.ID): Y.Item | undefined => {
    if (!known(id)) return items.at(id)
    const struct = Y.getItem(store, id) as Y.AbstractStruct
    return struct instanceof Y.Item ? struct : undefined
  }
  const places = new Map<Y.Item, Place | undefined>()

  /** Where a document item sits: up its parents to the root. */
  const placeInDocument = (item: Y.Item): Place => {
    const keys: (string | null)[] = []
    let at: Y.Item | null = item
    let type: Y.AbstractType<Y.YEvent<never>> | undefined
    while (at) {
      keys.unshift(at.parentSub)
      type = at.parent as Y.AbstractType<Y.YEvent<never>>
      at = type._item
    }
    return { root: rootNameOf(doc, type), keys }
  }

  /** Where an item sits; iterative along origins, which may chain through the whole update. */
  const placeOf = (start: Y.Item): Place | undefined => {
    const chain: Y.Item[] = []
    let place: Place | undefined
    for (let item: Y.Item | undefined = start; item; ) {
      if (places.has(item)) {
        place = places.get(item)
        break
      }
      chain.push(item)
      if (known(item.id)) {
        place = placeInDocument(item)
        break
      }
      const parent = item.parent as unknown
      if (typeof parent === 'string') {
        place = { root: parent, keys: [item.parentSub] }
        break
      }
      if (parent instanceof Y.ID) {
        const container = itemAt(parent)
        const above = container ? placeOf(container) : undefined
        place = above && { root: above.root, keys: [...above.keys, item.parentSub] }
        break
      }
      // Written with an origin: in the origin's place (the same parent, under the same key).
      const origin: Y.ID | null = item.origin ?? item.rightOrigin
      item = origin ? itemAt(origin) : undefined
    }
    for (const item of chain) places.set(item, place)
    return place
  }

  for (const s of decoded.structs) {
    if (!(s instanceof Y.Item) || known(s.id) || s.content instanceof Y.ContentDeleted) continue
    const place = placeOf(s)
    // Unplaceable (an origin already collected): Yjs discards such an item when it applies the update.
    if (!place) continue
    const spec = place.root === undefined ? undefined : specOfCollection(place.root)
    if (!spec) refuse(`the update writes to a top-level type ${place.root ?? '(unnamed)'}; the document holds only the entity type maps`)
    else checkPlace(spec, place.keys, s.content)
  }
}

function checkPlace(spec: EntitySpec, keys: (string | null)[], content: Content): void {
  const [entityId, field, inner] = keys
  // The entity map itself: checked by the inspector (a new Y.Map, never a replacement).
  if (keys.length === 1) return
  // The place's name is built for a refusal only: most updates pass, several items each.
  if (entityId === null || entityId === undefined) return refuse(`${spec.type}s are a map of entities by id`)
  if (field === null || field === undefined) return refuse(`${entityName(spec, entityId)} is a map of fields`)
  const fieldSpec = Object.hasOwn(spec.fields, field) ? spec.fields[field] : undefined
  if (!fieldSpec) return refuse(`${entityName(spec, entityId)}: ${field} is not a field of ${spec.type}`)
  if (keys.length === 2) {
    if (fieldSpec.kind === 'text') return isType(content, Y.Text) ? undefined : refuseField(spec, entityId, field, ' must be a Y.Text')
    if (fieldSpec.kind === 'list') return isType(content, Y.Array) ? undefined : refuseField(spec, entityId, field, ' must be a Y.Array')
    if (!(content instanceof Y.ContentAny || content instanceof Y.ContentJSON)) return refuseField(spec, entityId, field, ' must be a JSON value')
    for (const value of content.getContent()) {
      const parsed = fieldSpec.value.safeParse(value)
      if (!parsed.success) refuseField(spec, entityId, field, `: ${parsed.error.issues[0]?.message ?? 'invalid value'}`)
    }
    return
  }
  if (keys.length > 3 || inner !== null) return refuseField(spec, entityId, field, ' holds nothing nested')
  if (fieldSpec.kind === 'text') {
    const inText = content instanceof Y.ContentString || content instanceof Y.ContentFormat || content instanceof Y.ContentEmbed
    return inText ? undefined : refuseField(spec, entityId, field, ' holds text')
  }
  if (fieldSpec.kind === 'list' && (content instanceof Y.ContentAny || content instanceof Y.ContentJSON)) {
    const parsed = fieldSpec.value.safeParse(content.getContent())
    return parsed.success ? undefined : refuseField(spec, entityId, field, `: ${parsed.error.issues[0]?.message ?? 'invalid element'}`)
  }
  return refuseField(spec, entityId, field, ' is not a list or text')
}

const entityName = (spec: EntitySpec, entityId: string): string => `${spec.type} ${entityId}`
/** Refuses the write to a field, naming it (`what` follows the name). */
const refuseField = (spec: EntitySpec, entityId: string, field: string, what: string): never => refuse(`${entityName(spec, entityId)}.${field}${what}`)

const isType = (content: Content, type: typeof Y.Text | typeof Y.Array): boolean =>
  content instanceof Y.ContentType && content.type instanceof type
