/**
 * Replies and errors, encoded in one place (protocol §2): the ack gets
 * `{ ok: true, ...result }` or `{ ok: false, error }`, and a failed event is
 * also reported as `sync:error` `{ code, message, event, requestId? }`.
 * `replyError` returns the code it replied with.
 */
import type { ExtendedError } from 'socket.io'
import type { Ack } from '../types/events.js'
import { SyncEventType } from '../types/sync.js'
import { SyncError, toProtocolError, type ErrorCode } from '../utils/errors.js'
import type { Logger } from '../utils/logger.js'
import { requestIdOf } from './payloads.js'
import type { SyncSocket } from './types.js'

export function replyError(
  socket: SyncSocket,
  event: string,
  payload: unknown,
  ack: Ack | undefined,
  err: unknown,
  log: Logger,
): ErrorCode {
  const error = toProtocolError(err)
  if (!(err instanceof SyncError)) log.error({ err, event, userId: socket.data.userId }, 'event failed')
  socket.data.lastError = `${error.code}: ${error.message}`
  ack?.({ ok: false, error })
  const requestId = requestIdOf(payload)
  socket.emit(SyncEventType.SYNC_ERROR, requestId === undefined ? { ...error, event } : { ...error, event, requestId })
  return error.code
}

/** The `connect_error` messages a refused handshake can carry (protocol §1 and the README; `moved`: ownership.middleware.ts). */
export type HandshakeRefusal = 'unauthorized' | 'bad_request' | 'quota_exceeded' | 'rate_limited' | 'unavailable'

/** A refused handshake: the client's `connect_error` has `message` and `data` `{ code, message, retryAfterMs? }`. */
export function handshakeRefusal(message: HandshakeRefusal, code: ErrorCode, detail: string, retryAfterMs?: number): ExtendedError {
  const err: ExtendedError = new Error(message)
  err.data = retryAfterMs === undefined ? { code, message: detail } : { code, message: detail, retryAfterMs }
  return err
}
