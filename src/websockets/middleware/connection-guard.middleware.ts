/**
 * The first check of every handshake, before the token is verified (issue 4,
 * items 4 and 7): the per-address limits of `ServerLimits` and the server's
 * own state.
 *
 * - While the server shuts down, a handshake is refused with `connect_error`
 *   message `unavailable`, data `{ code: 'UNAVAILABLE', message, retryAfterMs }`.
 * - Past `ipConnections` handshakes of one address, or once that address has
 *   failed authentication `ipAuthFailures.burst` times faster than the bucket
 *   refills: message `rate_limited`, data `{ code: 'RATE_LIMITED', message,
 *   retryAfterMs }`.
 *
 * Every `retryAfterMs` is jittered (`utils/retry.ts`), so clients refused
 * together do not all come back together.
 */
import type { ExtendedError } from 'socket.io'
import type { ServerLimits } from '../../models/server-limits.js'
import { ErrorCode } from '../../utils/errors.js'
import type { Logger } from '../../utils/logger.js'
import { jittered, RESTART_RETRY_MS } from '../../utils/retry.js'
import { KeyedBuckets } from '../../utils/token-bucket.js'
import { logWorthy } from '../abuse-monitor.js'
import { handshakeRefusal } from '../reply.js'
import type { SyncSocket } from '../types.js'


export class ConnectionGuard {
  private readonly connections: KeyedBuckets
  private readonly authFailures: KeyedBuckets
  private closing = false
  /** Totals since start, for throttling the log (the metrics count refusals in server.ts). */
  private failedTotal = 0
  private refusedTotal = 0

  constructor(
    limits: Pick<ServerLimits, 'ipConnections' | 'ipAuthFailures'>,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.connections = new KeyedBuckets(() => limits.ipConnections)
    this.authFailures = new KeyedBuckets(() => limits.ipAuthFailures)
  }

  /** From now on every handshake is refused as `unavailable` (the server is shutting down). */
  close(): void {
    this.closing = true
  }

  /** The auth middleware reports each handshake it refused for its token. */
  authFailed(address: string): void {
    const total = ++this.failedTotal
    const now = this.now()
    const failures = this.authFailures.get(address, now)
    failures.take(1, now)
    const locked = failures.waitMs(1, now) > 0
    if (locked || logWorthy(total)) this.log.warn({ address, total, locked }, 'failed authentication')
  }

  middleware() {
    return (socket: SyncSocket, next: (err?: ExtendedError) => void): void => {
      if (this.closing) {
        next(handshakeRefusal('unavailable', ErrorCode.UNAVAILABLE, 'the server is shutting down; connect again', jittered(RESTART_RETRY_MS)))
        return
      }
      const address = socket.handshake.address
      const now = this.now()
      const failures = this.authFailures.get(address, now)
      const lockedFor = failures.waitMs(1, now)
      const wait = lockedFor > 0 ? lockedFor : this.connections.get(address, now).tryTake(1, now)
      if (wait > 0) {
        this.refusedTotal++
        const detail = lockedFor > 0 ? 'too many failed authentications from this address' : 'too many connections from this address'
        if (logWorthy(this.refusedTotal)) this.log.warn({ address, reason: detail }, 'connection refused: rate limit')
        next(handshakeRefusal('rate_limited', ErrorCode.RATE_LIMITED, detail, jittered(wait)))
        return
      }
      next()
    }
  }
}
