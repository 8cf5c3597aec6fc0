/**
 * The document's entity schema, as the client needs it (the server's
 * `src/models/entity-schema.ts`; `test/sdk.schema.test.ts` holds the two
 * equal): one top-level `Y.Map` per entity type, each entity a `Y.Map` of its
 * fields, `text` fields a `Y.Text` and `list` fields a `Y.Array`.
 *
 * The entity API validates every write against it before touching the
 * document, so a write the server would refuse (`INVALID_PAYLOAD`) is refused
 * here, synchronously, and changes nothing.
 */

export type EntityType = 'clip' | 'folder' | 'set' | 'tag' | 'template' | 'setting'
export type FieldKind = 'lww' | 'manual' | 'text' | 'list'

/** A JSON value as the server accepts it: finite numbers, no undefined, no functions. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json }

export interface FieldSpec {
  kind: FieldKind
  /** Why a value is refused, or undefined when it fits. */
  check: (value: unknown) => string | undefined
}

export interface EntitySpec {
  type: EntityType
  /** The top-level `Y.Map` of the document holding this type. */
  collection: string
  fields: Readonly<Record<string, FieldSpec>>
}

const isString = (v: unknown): string | undefined => (typeof v === 'string' ? undefined : 'expected a string')
const isBoolean = (v: unknown): string | undefined => (typeof v === 'boolean' ? undefined : 'expected a boolean')
const isNumber = (v: unknown): string | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? undefined : 'expected a finite number'
const isMs = (v: unknown): string | undefined =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? undefined : 'expected a time in ms (a non-negative integer)'
const nullable =
  (check: (v: unknown) => string | undefined) =>
  (v: unknown): string | undefined =>
    v === null ? undefined : check(v) && `${check(v)} or null`
const oneOf =
  (...values: string[]) =>
  (v: unknown): string | undefined =>
    typeof v === 'string' && values.includes(v) ? undefined : `expected one of ${values.join(', ')}`
const arrayOf =
  (check: (v: unknown) => string | undefined) =>
  (v: unknown): string | undefined => {
    if (!Array.isArray(v)) return 'expected an array'
    const bad = v.findIndex((item) => check(item) !== undefined)
    return bad < 0 ? undefined : `item ${bad}: ${check(v[bad])}`
  }

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/** Any JSON value, nested at most 32 deep, without keys the server refuses. */
function isJson(value: unknown, depth = 0): string | undefined {
  if (depth > 32) return 'nested deeper than 32'
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined
  if (typeof value === 'number') return isNumber(value)
  if (Array.isArray(value)) {
    for (const item of value) {
      const why = isJson(item, depth + 1)
      if (why) return why
    }
    return undefined
  }
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const [key, item] of Object.entries(value)) {
      if (FORBIDDEN_KEYS.has(key)) return `the key ${key} is not allowed`
      const why = isJson(item, depth + 1)
      if (why) return why
    }
    return undefined
  }
  return 'expected a JSON value'
}

const lww = (check: FieldSpec['check']): FieldSpec => ({ kind: 'lww', check })
const manual = (check: FieldSpec['check']): FieldSpec => ({ kind: 'manual', check })
const text = (): FieldSpec => ({ kind: 'text', check: isString })
const list = (check: FieldSpec['check']): FieldSpec => ({ kind: 'list', check: arrayOf(check) })

/** Soft deletion: a deleted entity keeps its map with these two fields. */
export const DELETED = '_deleted'
export const DELETED_AT = 'deletedAt'
const system = { [DELETED]: lww(isBoolean), [DELETED_AT]: lww(nullable(isMs)) }

const spec = (type: EntityType, collection: string, fields: Record<string, FieldSpec>): EntitySpec => ({
  type,
  collection,
  fields: { ...fields, ...system },
})

export const ENTITY_SPECS: Readonly<Record<EntityType, EntitySpec>> = {
  clip: spec('clip', 'clips', {
    content: manual(isString),
    contentType: lww(oneOf('text', 'html', 'image', 'file', 'link')),
    title: lww(isString),
    folderId: manual(nullable(isString)),
    tagIds: list(isString),
    pinned: lww(isBoolean),
    favorite: lww(isBoolean),
    source: lww(isString),
    createdAt: lww(isMs),
  }),
  folder: spec('folder', 'folders', {
    name: lww(isString),
    parentId: manual(nullable(isString)),
    color: lww(isString),
    order: lww(isNumber),
  }),
  set: spec('set', 'sets', {
    name: lww(isString),
    description: lww(isString),
    clipIds: list(isString),
  }),
  tag: spec('tag', 'tags', { name: lww(isString), color: lww(isString) }),
  template: spec('template', 'templates', { name: lww(isString), body: text() }),
  setting: spec('setting', 'settings', { value: manual(isJson) }),
}

export const ENTITY_TYPES = Object.keys(ENTITY_SPECS) as EntityType[]
