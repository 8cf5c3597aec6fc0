/**
 * Checks a client's Yjs update before anything is stored: it must be a
 * non-empty V1 update that decodes whole. A stored update is applied on every
 * later load, so one that does not decode would poison the document.
 */
import * as Y from 'yjs'
import { ErrorCode, SyncError } from '../utils/errors.js'

export interface CheckedUpdate {
  /** The update adds no structs and deletes nothing: there is nothing to store. */
  empty: boolean
}

export function checkUpdate(update: Uint8Array): CheckedUpdate {
  if (update.byteLength === 0) throw new SyncError(ErrorCode.INVALID_UPDATE, 'update is empty')
  let decoded: ReturnType<typeof Y.decodeUpdate>
  try {
    decoded = Y.decodeUpdate(update)
  } catch (cause) {
    throw new SyncError(ErrorCode.INVALID_UPDATE, 'update is not a decodable Yjs V1 update', { cause })
  }
  return { empty: decoded.structs.length === 0 && decoded.ds.clients.size === 0 }
}

/** Decodes a client's state vector, or throws INVALID_PAYLOAD. */
export function checkStateVector(stateVector: Uint8Array): Map<number, number> {
  try {
    return Y.decodeStateVector(stateVector)
  } catch (cause) {
    throw new SyncError(ErrorCode.INVALID_PAYLOAD, 'stateVector is not a Yjs state vector', { cause })
  }
}
