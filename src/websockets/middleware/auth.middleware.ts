/**
 * Handshake authentication (protocol §1). A refused connection sees
 * `connect_error` with `message` `unauthorized` (or `bad_request` for a bad
 * deviceId) and `data` `{ code, message }`. On success the socket's identity
 * lives in `socket.data`, and it joins its user's room, chosen here from the
 * verified token and never from anything the client says later.
 *
 * A token that expires while its socket stays connected (issue 4, item 5):
 * from its `exp` on the socket's events are all refused with `UNAUTHORIZED`
 * `token expired` (reads too: an expired token authorizes nothing) and the
 * socket is disconnected (`checkTokenExpiry`, called by the event router before
 * any handler runs). A socket that sends nothing is disconnected at `exp` by a
 * timer (`scheduleTokenExpiry`), after `sync:error`
 * `{ code: 'UNAUTHORIZED', message: 'token expired', event: 'auth' }`. The
 * client then connects again with a new token.
 */
import { WIRE_SINGLE_FRAME } from '@superclip/sync-client/wire'
import type { ExtendedError } from 'socket.io'
import { InvalidTokenError, verifyToken } from '../../services/token.service.js'
import type { Ack } from '../../types/events.js'
import { ErrorCode, SyncError } from '../../utils/errors.js'
import type { Logger } from '../../utils/logger.js'
import { DEVICE_ID } from '../payloads.js'
import { handshakeRefusal, replyError } from '../reply.js'
import type { SyncSocket } from '../types.js'

/**
 * A socket that passed this middleware: `socket.data` holds its verified
 * user, device and plan (the seed's handlers take one).
 */
export type AuthenticatedSocket = SyncSocket

/** `onRefused` hears the address of every handshake refused for its token (the connection guard counts them). */
export function createAuthMiddleware(jwtSecret: string, log: Logger, onRefused: (address: string) => void = () => {}) {
  return (socket: SyncSocket, next: (err?: ExtendedError) => void): void => {
    const auth: unknown = socket.handshake.auth
    const { token, deviceId, wire } = (typeof auth === 'object' && auth !== null ? auth : {}) as Record<string, unknown>
    verifyToken(jwtSecret, token).then(
      (claims) => {
        if (typeof deviceId !== 'string' || !DEVICE_ID.test(deviceId)) {
          next(handshakeRefusal('bad_request', ErrorCode.INVALID_PAYLOAD, 'deviceId must be 1-128 characters of [A-Za-z0-9._:-]'))
          return
        }
        socket.data = {
          userId: claims.userId,
          deviceId,
          plan: claims.plan,
          tokenExp: claims.exp,
          mode: undefined,
          paused: false,
          pausedAt: undefined,
          syncInProgress: false,
          lastError: null,
          singleFrame: wire === WIRE_SINGLE_FRAME,
        }
        next()
      },
      (err: unknown) => {
        const detail = err instanceof InvalidTokenError ? err.message : 'token could not be verified'
        log.info({ address: socket.handshake.address, reason: detail }, 'connection refused')
        onRefused(socket.handshake.address)
        next(handshakeRefusal('unauthorized', ErrorCode.UNAUTHORIZED, detail))
      },
    )
  }
}

/** What `sync:error` and the ack say once the token has expired. */
export const TOKEN_EXPIRED = 'token expired'
/** The `event` of the `sync:error` sent when the expiry timer ends a silent socket. */
export const EXPIRY_EVENT = 'auth'
/** setTimeout's largest delay (~24.8 days); a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1

/**
 * Whether the socket's token has expired at `now` (ms). `exp` is in seconds and,
 * as for jose at the handshake, the token is expired from that second on.
 */
export function tokenExpired(socket: SyncSocket, now = Date.now()): boolean {
  const { tokenExp } = socket.data
  return tokenExp !== undefined && now >= tokenExp * 1000
}

/**
 * Ends the session of a socket whose token has expired: the ack (if any) and
 * `sync:error` say `UNAUTHORIZED` `token expired`, then the server disconnects
 * the socket (the client sees `io server disconnect` after both, as packets
 * keep their order, and does not reconnect by itself with the old token).
 */
export function endExpiredSession(
  socket: SyncSocket,
  event: string,
  payload: unknown,
  ack: Ack | undefined,
  log: Logger,
): void {
  const { userId, deviceId } = socket.data
  log.info({ userId, deviceId, event }, 'token expired; disconnecting the socket')
  replyError(socket, event, payload, ack, new SyncError(ErrorCode.UNAUTHORIZED, TOKEN_EXPIRED), log)
  socket.disconnect()
}

/**
 * Called by the event router before it runs any handler: true (and the session
 * ended, nothing of the event handled) when the token has expired. Catches an
 * event that arrives after `exp` before the timer has fired (a wall clock that
 * jumped, a busy event loop).
 */
export function checkTokenExpiry(
  socket: SyncSocket,
  event: string,
  payload: unknown,
  ack: Ack | undefined,
  log: Logger,
): boolean {
  if (!tokenExpired(socket)) return false
  endExpiredSession(socket, event, payload, ack, log)
  return true
}

/**
 * Arms the socket's expiry timer at connect: at `exp` the socket gets
 * `sync:error` `{ code: 'UNAUTHORIZED', message: 'token expired', event: 'auth' }`
 * and is disconnected. A token without `exp` gets no timer. The timer is
 * unref'd (it never keeps the process up) and cleared on disconnect. It checks
 * the wall clock when it fires and re-arms if early, which also covers delays
 * beyond setTimeout's limit.
 */
export function scheduleTokenExpiry(socket: SyncSocket, log: Logger): void {
  const { tokenExp } = socket.data
  if (tokenExp === undefined) return
  let timer: NodeJS.Timeout | undefined
  const arm = (): void => {
    timer = undefined
    if (!socket.connected) return
    const delay = tokenExp * 1000 - Date.now()
    if (delay <= 0) {
      endExpiredSession(socket, EXPIRY_EVENT, undefined, undefined, log)
      return
    }
    timer = setTimeout(arm, Math.min(delay, MAX_TIMER_MS)).unref()
  }
  socket.once('disconnect', () => clearTimeout(timer))
  arm()
}
