/**
 * Server-wide limits that do not depend on the plan (issue 4, item 4). The
 * README's "Rate limits" section mirrors this table; tests pass others
 * through `ServerConfig.limits`, and the per-IP connection rate can be set
 * from the environment (`IP_CONNECTIONS_PER_SECOND`, `IP_CONNECTION_BURST`).
 *
 * - `ipConnections`: handshakes per client IP address (as the server sees it:
 *   behind a proxy, the proxy's). Over it: `connect_error` `rate_limited`.
 * - `ipAuthFailures`: failed authentications per IP address. Once the bucket
 *   is empty, every handshake from that address is refused with
 *   `rate_limited` until it refills (a token guesser gets ~10 tries a minute).
 * - `socketQueue`: events (and their payload bytes) one socket may have
 *   accepted and not yet answered: waiting for its document to load, or for
 *   their write. More is `RATE_LIMITED`, so a socket cannot pile up memory
 *   behind a slow load or a slow disk.
 * - `strikes`: events of one socket refused as invalid (`INVALID_PAYLOAD`,
 *   `INVALID_UPDATE`, `PAYLOAD_TOO_LARGE`) or for its rate (`RATE_LIMITED`).
 *   Each takes a token; a socket whose bucket is empty is disconnected.
 * - `slice`: how much of one user's work runs before other users' turn
 *   (websockets/fair-scheduler.ts): events, and their measured time in ms.
 * - `throttle`: when a user that runs far more events than the others is
 *   capped, and how (websockets/heavy-user-throttle.ts).
 * - `refusalHold`: a handshake refused `rate_limited` is answered after its
 *   `retryAfterMs`, up to `ms`, for at most `held` handshakes at once
 *   (websockets/refusal-tarpit.ts).
 */
import type { Rate } from '../utils/token-bucket.js'
import type { ThrottleLimits } from '../websockets/heavy-user-throttle.js'

export interface SliceLimits {
  /** Events of one user run back to back at most. */
  events: number
  /** Measured time of one user's events run back to back, ms (one event may pass it: it is never cut). */
  ms: number
  /**
   * Writes of the user's document queued or being written past which its
   * events wait for them: the group commit's share of one user, and so the
   * time every other user's commit waits for it.
   */
  writes: number
}

export interface ServerLimits {
  ipConnections: Rate
  ipAuthFailures: Rate
  socketQueue: { events: number; bytes: number }
  strikes: Rate
  slice: SliceLimits
  throttle: ThrottleLimits
  refusalHold: { ms: number; held: number }
}

export const SERVER_LIMITS: ServerLimits = {
  ipConnections: { perSecond: 50, burst: 500 },
  ipAuthFailures: { perSecond: 1 / 6, burst: 20 },
  socketQueue: { events: 1024, bytes: 64 << 20 },
  strikes: { perSecond: 1, burst: 100 },
  slice: { events: 64, ms: 5, writes: 64 },
  throttle: { windowMs: 100, busy: 0.3, busyMargin: 0.1, targetMs: 5, minEvents: 10, factor: 4, decrease: 0.7, increase: 1.15, startPerSecond: 200, floorPerSecond: 50 },
  refusalHold: { ms: 5000, held: 1000 },
}
