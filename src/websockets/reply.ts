/**
 * Replies and errors, encoded in one place (PROTOCOL section 2): the ack gets
 * `{ ok: true, ...result }` or `{ ok: false, error }`, and a failed event is
 * also reported as `sync:error` `{ code, message, event, requestId? }`.
 */
import type { Ack, ClientToServerEvents } from '../types/events.js'
import { SyncEventType } from '../types/sync.js'
import { SyncError, toProtocolError } from '../utils/errors.js'
import type { Logger } from '../utils/logger.js'
import { requestIdOf } from './payloads.js'
import type { SyncSocket } from './types.js'

export type EventHandler = (payload: unknown) => Promise<Record<string, unknown> | void>

/**
 * Registers `handler` for `event`. The listener is attached synchronously, so
 * nothing a client sends right after connecting is missed (socket.io-client#1527);
 * handlers that need the document await it themselves.
 */
export function onEvent(socket: SyncSocket, event: keyof ClientToServerEvents, handler: EventHandler, log: Logger): void {
  socket.on(event, (...args: unknown[]) => {
    const last = args[args.length - 1]
    const ack = typeof last === 'function' ? (last as Ack) : undefined
    const payload = ack ? (args.length > 1 ? args[0] : undefined) : args[0]
    handler(payload).then(
      (result) => ack?.({ ok: true, ...result }),
      (err: unknown) => replyError(socket, event, payload, ack, err, log),
    )
  })
}

export function replyError(
  socket: SyncSocket,
  event: string,
  payload: unknown,
  ack: Ack | undefined,
  err: unknown,
  log: Logger,
): void {
  const error = toProtocolError(err)
  if (!(err instanceof SyncError)) log.error({ err, event, userId: socket.data.userId }, 'event failed')
  ack?.({ ok: false, error })
  const requestId = requestIdOf(payload)
  socket.emit(SyncEventType.ERROR, requestId === undefined ? { ...error, event } : { ...error, event, requestId })
}
