/**
 * Checks a client's Yjs update before anything is applied or stored: it must
 * be a non-empty V1 update that passes the structural pre-check, decodes
 * whole, and depends on nothing the document lacks. A stored update is applied
 * on every later load, so one that does not decode would poison the document,
 * and one with missing dependencies would sit in it as pending structs.
 */
import * as Y from 'yjs'
import { ErrorCode, SyncError } from '../utils/errors.js'
import { precheckUpdate } from './update-precheck.js'

export type DecodedUpdate = ReturnType<typeof Y.decodeUpdate>

export function decodeClientUpdate(update: Uint8Array): DecodedUpdate {
  if (update.byteLength === 0) throw new SyncError(ErrorCode.INVALID_UPDATE, 'update is empty')
  precheckUpdate(update)
  try {
    return Y.decodeUpdate(update)
  } catch (cause) {
    throw new SyncError(ErrorCode.INVALID_UPDATE, 'update is not a decodable Yjs V1 update', { cause })
  }
}

export const MISSING_DEPENDENCIES = 'missing dependencies: send sync:request with your state vector, then the update the server lacks'

/**
 * Refuses an update that Yjs would keep pending: a struct starting past what
 * the document and the update's earlier structs hold for its client, an
 * origin or parent the document lacks and the update does not bring, or a
 * deletion of clocks neither has. The client re-syncs by state vector and
 * sends `Y.encodeStateAsUpdate(doc, serverStateVector)`, which holds it all.
 */
export function refuseMissingDependencies(doc: Y.Doc, decoded: DecodedUpdate): void {
  const store = doc.store
  // Per client, the clock up to which the document and this update hold every struct, without a gap.
  const held = new Map<number, number>()
  const heldOf = (client: number) => held.get(client) ?? Y.getState(store, client)
  for (const s of decoded.structs) {
    if (s instanceof Y.Skip) continue
    const have = heldOf(s.id.client)
    if (s.id.clock > have) throw new SyncError(ErrorCode.INVALID_UPDATE, `${MISSING_DEPENDENCIES} (client ${s.id.client} from clock ${have})`)
    held.set(s.id.client, Math.max(have, s.id.clock + s.length))
  }
  const refuseMissing = (s: Y.Item, ref: Y.ID | null): void => {
    if (!ref) return
    if (ref.client === s.id.client && ref.clock >= s.id.clock) {
      throw new SyncError(ErrorCode.INVALID_UPDATE, 'update is not a valid Yjs update: a struct refers to a later clock of its own client')
    }
    if (ref.clock >= heldOf(ref.client)) throw new SyncError(ErrorCode.INVALID_UPDATE, `${MISSING_DEPENDENCIES} (refers to ${ref.client}:${ref.clock})`)
  }
  for (const s of decoded.structs) {
    if (!(s instanceof Y.Item)) continue
    const parent = s.parent as unknown
    refuseMissing(s, s.origin)
    refuseMissing(s, s.rightOrigin)
    if (parent instanceof Y.ID) refuseMissing(s, parent)
  }
  for (const [client, ranges] of decoded.ds.clients) {
    for (const { clock, len } of ranges) {
      if (clock + len > heldOf(client)) throw new SyncError(ErrorCode.INVALID_UPDATE, `${MISSING_DEPENDENCIES} (deletes ${client}:${clock + len - 1})`)
    }
  }
}

/** The update adds no structs and deletes nothing: there is nothing to store. */
export function isEmptyUpdate(decoded: DecodedUpdate): boolean {
  return decoded.structs.length === 0 && decoded.ds.clients.size === 0
}

/** Decodes a client's state vector, or throws INVALID_PAYLOAD. */
export function checkStateVector(stateVector: Uint8Array): Map<number, number> {
  try {
    return Y.decodeStateVector(stateVector)
  } catch (cause) {
    throw new SyncError(ErrorCode.INVALID_PAYLOAD, 'stateVector is not a Yjs state vector', { cause })
  }
}
