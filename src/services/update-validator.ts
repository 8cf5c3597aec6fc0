/**
 * Checks a client's Yjs update before anything is applied or stored: it must
 * be a non-empty V1 update that decodes whole. A stored update is applied on
 * every later load, so one that does not decode would poison the document.
 */
import * as Y from 'yjs'
import { ErrorCode, SyncError } from '../utils/errors.js'

export type DecodedUpdate = ReturnType<typeof Y.decodeUpdate>

export function decodeClientUpdate(update: Uint8Array): DecodedUpdate {
  if (update.byteLength === 0) throw new SyncError(ErrorCode.INVALID_UPDATE, 'update is empty')
  try {
    return Y.decodeUpdate(update)
  } catch (cause) {
    throw new SyncError(ErrorCode.INVALID_UPDATE, 'update is not a decodable Yjs V1 update', { cause })
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
