/** A document as JSON (protocol §9): `{ clips: { [id]: fields }, folders: …, … }`, soft-deleted entities included. */
import * as Y from 'yjs'
import { ENTITY_SPECS } from '../../models/entity-schema.js'
import { entitiesOf, readEntity } from '../entity-index.js'
import { newServerDoc } from '../ydoc.js'

export type DocumentJson = Record<string, Record<string, Record<string, unknown>>>

export function documentJson(doc: Y.Doc): DocumentJson {
  const json: DocumentJson = {}
  for (const spec of Object.values(ENTITY_SPECS)) json[spec.collection] = {}
  for (const { spec, id, map } of entitiesOf(doc)) (json[spec.collection] as Record<string, unknown>)[id] = readEntity(map)
  return json
}

/** A Yjs document from a stored state. */
export function docFromState(state: Uint8Array): Y.Doc {
  const doc = newServerDoc()
  Y.applyUpdate(doc, state)
  return doc
}
