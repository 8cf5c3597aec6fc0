/**
 * The entity schema (protocol §3), declared once, as data. Validation,
 * translation between change records and the Yjs document, conflict detection
 * and counts all read it: adding a field is one line here.
 *
 * Field kinds:
 * - `lww`: a JSON value; concurrent writes resolve silently (Yjs order).
 * - `manual`: a JSON value; a concurrent write is a conflict (section 6).
 * - `text`: a `Y.Text`; concurrent edits merge character-wise.
 * - `list`: a `Y.Array` of JSON values; concurrent edits merge.
 */
import { z } from 'zod'
import { SyncEntityType } from '../types/sync.js'

export type FieldKind = 'lww' | 'manual' | 'text' | 'list'

export interface FieldSpec {
  kind: FieldKind
  /** The value a JSON client sends: for `text` the whole string, for `list` the whole array. */
  value: z.ZodType
}

export interface EntitySpec {
  type: SyncEntityType
  /** The document's top-level `Y.Map` holding entities of this type. */
  collection: string
  fields: Readonly<Record<string, FieldSpec>>
}

/** Any JSON value, bounded: no functions, no undefined, finite numbers only. */
const json: z.ZodType = z.lazy(() =>
  z.union([z.string(), z.number().finite(), z.boolean(), z.null(), z.array(json), z.record(z.string(), json)]),
)
const ms = z.number().int().nonnegative()

const lww = (value: z.ZodType): FieldSpec => ({ kind: 'lww', value })
const manual = (value: z.ZodType): FieldSpec => ({ kind: 'manual', value })
const text = (): FieldSpec => ({ kind: 'text', value: z.string() })
const list = (item: z.ZodType): FieldSpec => ({ kind: 'list', value: z.array(item) })

/** Soft deletion (section 3): a deleted entity keeps its map with these two fields. */
export const DELETED = '_deleted'
export const DELETED_AT = 'deletedAt'
// A device that revives an entity may clear its deletedAt.
const systemFields: Record<string, FieldSpec> = { [DELETED]: lww(z.boolean()), [DELETED_AT]: lww(ms.nullable()) }

const spec = (type: SyncEntityType, collection: string, fields: Record<string, FieldSpec>): EntitySpec => ({
  type,
  collection,
  fields: { ...fields, ...systemFields },
})

export const ENTITY_SPECS: Readonly<Record<SyncEntityType, EntitySpec>> = {
  [SyncEntityType.CLIP]: spec(SyncEntityType.CLIP, 'clips', {
    content: manual(z.string()),
    contentType: lww(z.enum(['text', 'html', 'image', 'file', 'link'])),
    title: lww(z.string()),
    folderId: manual(z.string().nullable()),
    tagIds: list(z.string()),
    pinned: lww(z.boolean()),
    favorite: lww(z.boolean()),
    source: lww(z.string()),
    createdAt: lww(ms),
  }),
  [SyncEntityType.FOLDER]: spec(SyncEntityType.FOLDER, 'folders', {
    name: lww(z.string()),
    parentId: manual(z.string().nullable()),
    color: lww(z.string()),
    order: lww(z.number().finite()),
  }),
  [SyncEntityType.SET]: spec(SyncEntityType.SET, 'sets', {
    name: lww(z.string()),
    description: lww(z.string()),
    clipIds: list(z.string()),
  }),
  [SyncEntityType.TAG]: spec(SyncEntityType.TAG, 'tags', {
    name: lww(z.string()),
    color: lww(z.string()),
  }),
  [SyncEntityType.TEMPLATE]: spec(SyncEntityType.TEMPLATE, 'templates', {
    name: lww(z.string()),
    body: text(),
  }),
  [SyncEntityType.SETTING]: spec(SyncEntityType.SETTING, 'settings', {
    value: manual(json),
  }),
}

/** Full change-log syncs send these types first: what the app needs before it can show clips. */
export const SYNC_PRIORITY: readonly SyncEntityType[] = [
  SyncEntityType.SETTING,
  SyncEntityType.FOLDER,
  SyncEntityType.TAG,
  SyncEntityType.SET,
  SyncEntityType.TEMPLATE,
  SyncEntityType.CLIP,
]

const byCollection = new Map(Object.values(ENTITY_SPECS).map((s) => [s.collection, s]))

/** The entity spec whose top-level map is named `collection`, if any. */
export function specOfCollection(collection: string): EntitySpec | undefined {
  return byCollection.get(collection)
}
