/**
 * Replies and errors, encoded in one place (PROTOCOL section 2): the ack gets
 * `{ ok: true, ...result }` or `{ ok: false, error }`, and a failed event is
 * also reported as `sync:error` `{ code, message, event, requestId? }`.
 * `replyError` returns the code it replied with.
 */
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
  socket.emit(SyncEventType.ERROR, requestId === undefined ? { ...error, event } : { ...error, event, requestId })
  return error.code
}
