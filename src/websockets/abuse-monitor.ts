/**
 * Suspicious patterns (issue 4, item 4): repeated invalid events, floods past
 * the rate limits, and repeated failed authentications from one address.
 * Each is counted; the log gets a line at the 1st, 2nd, 4th, 8th... of a kind
 * per socket (or address), so a flood cannot flood the log; and past a
 * threshold the socket is disconnected (`ServerLimits.strikes`) or the
 * address refused (`ServerLimits.ipAuthFailures`, in the connection guard).
 *
 * A socket disconnected for its strikes is told to wait `retryAfterMs`, and
 * the wait is enforced: until it is over, every handshake of that user is
 * refused (`connect_error` `rate_limited`, with the time left). Without it, an
 * abuser that reconnects at once got a fresh socket and another 100 strikes
 * every 80 ms (npm run bench, flood run).
 */
import type { ExtendedError } from 'socket.io'
import type { ServerLimits } from '../models/server-limits.js'
import { ErrorCode } from '../utils/errors.js'
import type { Logger } from '../utils/logger.js'
import type { Metrics } from '../utils/metrics.js'
import { jittered } from '../utils/retry.js'
import { TokenBucket } from '../utils/token-bucket.js'
import { SyncEventType } from '../types/sync.js'
import { handshakeRefusal } from './reply.js'
import type { SyncSocket } from './types.js'

/** Codes of refused events that count as strikes against their socket. */
const STRIKE_CODES: ReadonlySet<string> = new Set([
  ErrorCode.INVALID_PAYLOAD,
  ErrorCode.INVALID_UPDATE,
  ErrorCode.PAYLOAD_TOO_LARGE,
  ErrorCode.RATE_LIMITED,
])
/** What a socket disconnected for its strikes is told, and how long it should wait. */
const STRUCK_OUT_MESSAGE = 'too many refused events; disconnected'
const STRUCK_OUT_RETRY_MS = 5000
/** The `event` of that `sync:error`. */
export const ABUSE_EVENT = 'abuse'

interface SocketStrikes {
  bucket: TokenBucket
  counts: Map<string, number>
  out: boolean
}

/** True when `n` is 1, 2, 4, 8...: the counts at which a pattern is logged. */
export const logWorthy = (n: number): boolean => (n & (n - 1)) === 0

export class AbuseMonitor {
  private readonly sockets = new WeakMap<SyncSocket, SocketStrikes>()
  /** Users whose socket was struck out, until when (ms) their handshakes are refused. */
  private readonly bannedUntil = new Map<string, number>()

  constructor(
    private readonly limits: Pick<ServerLimits, 'strikes'>,
    private readonly log: Logger,
    /** Refused events and handshakes are counted where they are refused (event-router.ts, server.ts); disconnects here. */
    private readonly metrics: Metrics,
    private readonly now: () => number = Date.now,
  ) {}

  /** Called with every refused event's code: counts it and, past the threshold, disconnects the socket. */
  refused(socket: SyncSocket, event: string, code: string): void {
    if (!STRIKE_CODES.has(code)) return
    const now = this.now()
    let strikes = this.sockets.get(socket)
    if (!strikes) this.sockets.set(socket, (strikes = { bucket: new TokenBucket(this.limits.strikes, now), counts: new Map(), out: false }))
    if (strikes.out) return
    const count = (strikes.counts.get(code) ?? 0) + 1
    strikes.counts.set(code, count)
    const { userId, deviceId } = socket.data
    const address = socket.handshake.address
    if (logWorthy(count)) this.log.warn({ userId, deviceId, address, event, code, count }, 'refused events from one socket')
    if (strikes.bucket.tryTake(1, now) === 0) return
    strikes.out = true
    this.metrics.abuseDisconnects.inc()
    this.log.warn({ userId, deviceId, address, counts: Object.fromEntries(strikes.counts) }, 'disconnecting a socket for its refused events')
    const retryAfterMs = jittered(STRUCK_OUT_RETRY_MS)
    // Expired bans go here too, so the map holds only users still waiting (a banned user may never come back).
    for (const [user, until] of this.bannedUntil) if (until <= now) this.bannedUntil.delete(user)
    this.bannedUntil.set(userId, Math.max(this.bannedUntil.get(userId) ?? 0, now + retryAfterMs))
    socket.emit(SyncEventType.SYNC_ERROR, { code: ErrorCode.RATE_LIMITED, message: STRUCK_OUT_MESSAGE, event: ABUSE_EVENT, retryAfterMs })
    socket.disconnect(true)
  }

  /** Handshake check, after authentication: a user struck out recently waits out its `retryAfterMs`. */
  middleware() {
    return (socket: SyncSocket, next: (err?: ExtendedError) => void): void => {
      const { userId } = socket.data
      const until = this.bannedUntil.get(userId)
      const left = until === undefined ? 0 : until - this.now()
      if (left <= 0) {
        if (until !== undefined) this.bannedUntil.delete(userId)
        next()
        return
      }
      next(handshakeRefusal('rate_limited', ErrorCode.RATE_LIMITED, 'disconnected for refused events; wait before connecting again', Math.ceil(left)))
    }
  }
}
