/**
 * Handshake authentication (PROTOCOL section 1). A refused connection sees
 * `connect_error` with `message` `unauthorized` (or `bad_request` for a bad
 * deviceId) and `data` `{ code, message }`. On success the socket's identity
 * lives in `socket.data`, and it joins its user's room, chosen here from the
 * verified token and never from anything the client says later.
 */
import type { ExtendedError } from 'socket.io'
import { InvalidTokenError, verifyToken } from '../../services/token.service.js'
import { ErrorCode } from '../../utils/errors.js'
import type { Logger } from '../../utils/logger.js'
import { DEVICE_ID } from '../payloads.js'
import type { SyncSocket } from '../types.js'

function refusal(message: 'unauthorized' | 'bad_request', code: ErrorCode, detail: string): ExtendedError {
  const err: ExtendedError = new Error(message)
  err.data = { code, message: detail }
  return err
}

export function createAuthMiddleware(jwtSecret: string, log: Logger) {
  return (socket: SyncSocket, next: (err?: ExtendedError) => void): void => {
    const auth: unknown = socket.handshake.auth
    const { token, deviceId } = (typeof auth === 'object' && auth !== null ? auth : {}) as Record<string, unknown>
    verifyToken(jwtSecret, token).then(
      (claims) => {
        if (typeof deviceId !== 'string' || !DEVICE_ID.test(deviceId)) {
          next(refusal('bad_request', ErrorCode.INVALID_PAYLOAD, 'deviceId must be 1-128 characters of [A-Za-z0-9._:-]'))
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
        }
        next()
      },
      (err: unknown) => {
        const detail = err instanceof InvalidTokenError ? err.message : 'token could not be verified'
        log.info({ address: socket.handshake.address, reason: detail }, 'connection refused')
        next(refusal('unauthorized', ErrorCode.UNAUTHORIZED, detail))
      },
    )
  }
}
