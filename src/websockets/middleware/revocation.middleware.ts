/**
 * Revoked devices (protocol §9), checked at the handshake after
 * authentication: a device an operator revoked is refused with
 * `connect_error` `unauthorized` and `data` `{ code: 'REVOKED', message }`
 * until it is unrevoked. Revocations are stored, so they hold across restarts.
 */
import type { ExtendedError } from 'socket.io'
import { ErrorCode } from '../../utils/errors.js'
import type { Logger } from '../../utils/logger.js'
import { jittered, RESTART_RETRY_MS } from '../../utils/retry.js'
import { handshakeRefusal } from '../reply.js'
import type { SyncSocket } from '../types.js'

export const REVOKED_MESSAGE = 'this device was revoked by an operator'

export function createRevocationMiddleware(isRevoked: (userId: string, deviceId: string) => Promise<boolean>, log: Logger) {
  return (socket: SyncSocket, next: (err?: ExtendedError) => void): void => {
    const { userId, deviceId } = socket.data
    isRevoked(userId, deviceId).then(
      (revoked) => {
        if (!revoked) return next()
        log.info({ userId, deviceId }, 'connection refused: device revoked')
        next(handshakeRefusal('unauthorized', ErrorCode.REVOKED, REVOKED_MESSAGE))
      },
      (err: unknown) => {
        log.error({ err, userId, deviceId }, 'revocation check failed')
        next(handshakeRefusal('unavailable', ErrorCode.UNAVAILABLE, 'the server could not check this device; connect again', jittered(RESTART_RETRY_MS)))
      },
    )
  }
}
