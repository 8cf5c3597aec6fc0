/** The entity types' fields, as the entity API takes and returns them (docs/protocol.md, the document). */
import type * as Y from 'yjs'
import type { Json } from './schema.js'

export interface ClipFields {
  content: string
  contentType: 'text' | 'html' | 'image' | 'file' | 'link'
  title: string
  folderId: string | null
  tagIds: string[]
  pinned: boolean
  favorite: boolean
  source: string
  createdAt: number
}

export interface FolderFields {
  name: string
  parentId: string | null
  color: string
  order: number
}

export interface SetFields {
  name: string
  description: string
  clipIds: string[]
}

export interface TagFields {
  name: string
  color: string
}

export interface TemplateFields {
  name: string
  body: string
}

export interface SettingFields {
  value: Json
}

/**
 * An entity as `get()` and `list()` return it: its id, its plain fields as
 * values, and its `text` fields as the live `Y.Text` and `list` fields as the
 * live `Y.Array`, to edit in place (`clip.tagIds.push(['t1'])`).
 */
export type EntityView<F> = { id: string; _deleted?: boolean; deletedAt?: number | null } & {
  [K in keyof F]?: F[K] extends string[] ? Y.Array<string> : K extends 'body' ? Y.Text : F[K]
}

export type Clip = EntityView<ClipFields>
export type Folder = EntityView<FolderFields>
export type ClipSet = EntityView<SetFields>
export type Tag = EntityView<TagFields>
export type Template = EntityView<TemplateFields>
export type Setting = EntityView<SettingFields>
