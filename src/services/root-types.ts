/**
 * Which entity collection a top-level type of a document is. The checks of
 * every update and the entity index ask this of the types its items sit in.
 * They used to build a map of the document's top-level types per update, one
 * each: three maps per update on the hot path, where a lookup per collection
 * (six) allocates nothing. Always read from `doc.share`, so a top-level type
 * Yjs replaces (a placeholder made by an update, then `doc.getMap`) is never
 * stale.
 */
import type * as Y from 'yjs'
import { ENTITY_SPECS, type EntitySpec } from '../models/entity-schema.js'

const SPECS: readonly EntitySpec[] = Object.values(ENTITY_SPECS)

/** The spec of the entity collection `type` is, if it is one of `doc`'s. */
export function collectionSpecOf(doc: Y.Doc, type: unknown): EntitySpec | undefined {
  if (type === undefined || type === null) return undefined
  for (const spec of SPECS) if (doc.share.get(spec.collection) === type) return spec
  return undefined
}

/** The name of `doc`'s top-level type `type`, if it is one (a type not among the collections, which only a refusal names, costs a walk over every top-level type). */
export function rootNameOf(doc: Y.Doc, type: unknown): string | undefined {
  const spec = collectionSpecOf(doc, type)
  if (spec) return spec.collection
  for (const [name, t] of doc.share) if (t === type) return name
  return undefined
}
