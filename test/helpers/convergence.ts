/**
 * Comparing devices with the server: entity states of a Yjs document and of a
 * JSON device in one shape, and a wait until every live device has caught up.
 */
import { isDeepStrictEqual } from 'node:util'
import * as Y from 'yjs'
import type { SyncDocument } from '../../src/services/sync-document.js'
import { snapshot, waitFor, type YjsDevice } from './device.js'
import type { JsonDevice } from './json-device.js'
import type { TestServer } from './server.js'

/** Top-level map → entity type (protocol §3). */
export const COLLECTIONS: Readonly<Record<string, string>> = {
  clips: 'clip',
  folders: 'folder',
  sets: 'set',
  tags: 'tag',
  templates: 'template',
  settings: 'setting',
}

/** Every entity of a Yjs document, deleted ones too: `type:id` → its fields as JSON. */
export function docEntities(doc: Y.Doc): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {}
  for (const [collection, type] of Object.entries(COLLECTIONS)) {
    for (const [id, map] of doc.getMap<unknown>(collection)) {
      if (map instanceof Y.Map) out[`${type}:${id}`] = map.toJSON()
    }
  }
  return out
}

/** A JSON device's entities in the same shape, without the fields in `omit`. */
export function jsonEntities(device: JsonDevice, omit: readonly string[] = []): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {}
  for (const [key, state] of device.entities) {
    out[key] = Object.fromEntries(Object.entries(state.data).filter(([field]) => !omit.includes(field)))
  }
  return out
}

export function without(entities: Record<string, Record<string, unknown>>, omit: readonly string[]): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    Object.entries(entities).map(([key, data]) => [key, Object.fromEntries(Object.entries(data).filter(([f]) => !omit.includes(f)))]),
  )
}

/** The user's loaded document on the server (white box: for waiting and for reading the reference state). */
export function serverDocument(server: TestServer, userId: string): SyncDocument {
  const doc = server.services.registry.peek(userId)
  if (!doc) throw new Error(`the document of ${userId} is not loaded`)
  return doc
}

/**
 * Waits until every given Yjs device holds the server's document content and
 * every given JSON device holds the server's version of every entity.
 */
export async function settled(
  server: TestServer,
  userId: string,
  yjs: readonly YjsDevice[],
  json: readonly JsonDevice[],
  what: string,
  ms = 10_000,
): Promise<void> {
  const doc = serverDocument(server, userId)
  await waitFor(
    () => {
      const content = snapshot(doc.doc)
      if (!yjs.every((d) => isDeepStrictEqual(snapshot(d.doc), content))) return false
      const records = [...doc.entities.values()]
      return json.every((j) => j.entities.size === records.length && records.every((r) => j.entity(r.type, r.id)?.version === r.version))
    },
    what,
    ms,
  )
}
