/**
 * Cluster mode (protocol §11): a user's sockets are served only by the node
 * that owns the user. At the handshake, after every other check, the user's
 * document is loaded here, which takes the user's lease
 * (repositories/postgres-leases.ts). A lease another live node holds refuses
 * the socket with `connect_error` `moved`, `data` `{ code: 'MOVED', message,
 * url }`, the owner's PUBLIC_URL: the client connects there. A load that fails
 * otherwise is refused `unavailable` with a retry hint.
 *
 * The reference taken on the document is handed to the socket once it is
 * connected (`adopt`), so the document (and the lease) stays from the
 * handshake on; a handshake that never completes (the client went away, or a
 * later middleware refused it) drops it after a while.
 */
import type { ExtendedError } from 'socket.io'
import { LeaseHeldError } from '../../repositories/postgres-leases.js'
import type { DocumentLease } from '../../services/document-registry.js'
import { ErrorCode } from '../../utils/errors.js'
import type { Logger } from '../../utils/logger.js'
import { jittered, RESTART_RETRY_MS } from '../../utils/retry.js'
import { handshakeRefusal } from '../reply.js'
import type { SyncSocket } from '../types.js'

/** The `data.code` of a `moved` refusal (protocol §1). */
export const MOVED_CODE = 'MOVED'

/** How long a reference taken at an accepted handshake waits for its socket to connect. */
const HANDSHAKE_HOLD_MS = 10_000

/** A `moved` refusal: `connect_error` `message` `moved`, `data` `{ code: 'MOVED', message, url }`. */
export function movedRefusal(url: string): ExtendedError {
  const err: ExtendedError = new Error('moved')
  err.data = { code: MOVED_CODE, message: `this user is served by another node: connect to ${url}`, url }
  return err
}

export class OwnershipGate {
  private readonly pending = new WeakMap<SyncSocket, { lease: DocumentLease; timer: NodeJS.Timeout }>()

  constructor(
    private readonly open: (userId: string) => DocumentLease,
    private readonly log: Logger,
  ) {}

  middleware() {
    return (socket: SyncSocket, next: (err?: ExtendedError) => void): void => {
      const { userId, deviceId } = socket.data
      const lease = this.open(userId)
      lease.document.then(
        () => {
          const timer = setTimeout(() => lease.release(), HANDSHAKE_HOLD_MS)
          timer.unref()
          this.pending.set(socket, { lease, timer })
          next()
        },
        (err: unknown) => {
          lease.release()
          if (err instanceof LeaseHeldError) {
            this.log.info({ userId, deviceId, owner: err.nodeId, url: err.url }, 'connection refused: the user is served by another node')
            return next(movedRefusal(err.url))
          }
          this.log.error({ err, userId, deviceId }, 'document load at connect failed')
          next(handshakeRefusal('unavailable', ErrorCode.UNAVAILABLE, 'the document could not be loaded; connect again', jittered(RESTART_RETRY_MS)))
        },
      )
    }
  }

  /** The reference the handshake took on the socket's document, handed to the (now connected) socket. */
  take(socket: SyncSocket): DocumentLease | undefined {
    const held = this.pending.get(socket)
    if (!held) return undefined
    this.pending.delete(socket)
    clearTimeout(held.timer)
    return held.lease
  }
}
