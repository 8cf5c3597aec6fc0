/**
 * Rate limits on client events (issue 4, items 3 and 4; protocol §7).
 * Before any handler runs, an event must pass, in this order:
 *
 * 1. its socket's queue bound (`ServerLimits.socketQueue`): events accepted
 *    and not yet answered, and their bytes;
 * 2. four token buckets of its plan (`PlanLimits`): events and bytes of the
 *    socket, and of all the user's sockets together.
 *
 * A refused event gets `RATE_LIMITED` with `retryAfterMs` (how long until the
 * buckets hold enough, jittered so that refused clients do not all retry at
 * once) and nothing of it runs; it takes no tokens from any bucket.
 *
 * HTTP sync requests (`admitRequest`) draw on the same user buckets, and on a
 * device's own pair with the socket rates in place of a socket's; a request of
 * N changes counts N events.
 */
import type { PlanTable } from '../models/plans.js'
import type { ServerLimits } from '../models/server-limits.js'
import type { Plan } from '../types/events.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import { jittered } from '../utils/retry.js'
import { KeyedBuckets, TokenBucket } from '../utils/token-bucket.js'
import type { SyncSocket } from './types.js'

/** Retry hint while the socket's queue is full: about one write's time. */
const QUEUE_FULL_RETRY_MS = 100
/** Nodes of a JSON payload counted at most; past it the payload is far too large anyway. */
const MAX_COUNTED_NODES = 100_000

interface SocketState {
  events: TokenBucket
  bytes: TokenBucket
  queuedEvents: number
  queuedBytes: number
}

/**
 * The bytes an event's payload stands for: binary values by length, strings
 * and object keys by length, other values 8. Iterative, so a deep payload
 * cannot overflow the stack before it is refused by validation.
 */
export function payloadBytes(payload: unknown): number {
  let bytes = 0
  let nodes = 0
  const stack: unknown[] = [payload]
  while (stack.length > 0 && nodes++ < MAX_COUNTED_NODES) {
    const value = stack.pop()
    if (typeof value === 'string') bytes += value.length
    else if (value instanceof Uint8Array) bytes += value.byteLength
    else if (value instanceof ArrayBuffer) bytes += value.byteLength
    else if (Array.isArray(value)) for (const v of value as unknown[]) stack.push(v)
    else if (typeof value === 'object' && value !== null) {
      for (const [k, v] of Object.entries(value)) {
        bytes += k.length
        stack.push(v)
      }
    } else bytes += 8
  }
  return bytes
}

export class EventLimiter {
  private readonly sockets = new WeakMap<SyncSocket, SocketState>()
  private readonly userEvents: KeyedBuckets
  private readonly userBytes: KeyedBuckets
  private readonly deviceEvents: KeyedBuckets
  private readonly deviceBytes: KeyedBuckets

  constructor(
    private readonly plans: PlanTable,
    private readonly limits: Pick<ServerLimits, 'socketQueue'>,
    private readonly now: () => number = Date.now,
  ) {
    // Keyed by plan and user: a user whose sockets carry tokens of two plans has a bucket in each.
    const planOf = (key: string): Plan => key.slice(0, key.indexOf(':')) as Plan
    this.userEvents = new KeyedBuckets((key) => this.plans[planOf(key)].userEvents)
    this.userBytes = new KeyedBuckets((key) => this.plans[planOf(key)].userBytes)
    this.deviceEvents = new KeyedBuckets((key) => this.plans[planOf(key)].socketEvents)
    this.deviceBytes = new KeyedBuckets((key) => this.plans[planOf(key)].socketBytes)
  }

  private state(socket: SyncSocket, now: number): SocketState {
    let state = this.sockets.get(socket)
    if (!state) {
      const limits = this.plans[socket.data.plan]
      state = {
        events: new TokenBucket(limits.socketEvents, now),
        bytes: new TokenBucket(limits.socketBytes, now),
        queuedEvents: 0,
        queuedBytes: 0,
      }
      this.sockets.set(socket, state)
    }
    return state
  }

  /**
   * Admits one event of `bytes` (queued until `done`), or returns the
   * `RATE_LIMITED` error to refuse it with.
   */
  admit(socket: SyncSocket, bytes: number): SyncError | undefined {
    const now = this.now()
    const state = this.state(socket, now)
    const queue = this.limits.socketQueue
    if (state.queuedEvents >= queue.events || (state.queuedEvents > 0 && state.queuedBytes + bytes > queue.bytes)) {
      return new SyncError(
        ErrorCode.RATE_LIMITED,
        `too many events waiting on this socket (at most ${queue.events} events or ${queue.bytes} bytes)`,
        { retryAfterMs: jittered(QUEUE_FULL_RETRY_MS) },
      )
    }
    const { plan, userId } = socket.data
    const refused = this.take(plan, userId, { events: state.events, bytes: state.bytes, name: 'socket' }, 1, bytes, now)
    if (refused) return refused
    state.queuedEvents++
    state.queuedBytes += bytes
    return undefined
  }

  /** Admits an HTTP sync request of `events` events and `bytes` from a device, or returns its `RATE_LIMITED` error. */
  admitRequest(plan: Plan, userId: string, deviceId: string, events: number, bytes: number): SyncError | undefined {
    const now = this.now()
    const key = `${plan}:${userId}:${deviceId}`
    const device = { events: this.deviceEvents.get(key, now), bytes: this.deviceBytes.get(key, now), name: 'device' }
    return this.take(plan, userId, device, events, bytes, now)
  }

  /** Takes `events` and `bytes` from the channel's and the user's buckets, all or none. */
  private take(
    plan: Plan,
    userId: string,
    channel: { events: TokenBucket; bytes: TokenBucket; name: string },
    events: number,
    bytes: number,
    now: number,
  ): SyncError | undefined {
    const key = `${plan}:${userId}`
    const buckets = [channel.events, this.userEvents.get(key, now), channel.bytes, this.userBytes.get(key, now)]
    const costs = [events, events, bytes, bytes]
    const waits = buckets.map((b, i) => b.waitMs(costs[i] ?? 0, now))
    const wait = Math.max(...waits)
    if (wait > 0) {
      const which = [`${channel.name} events`, 'user events', `${channel.name} bytes`, 'user bytes'][waits.indexOf(wait)]
      return new SyncError(ErrorCode.RATE_LIMITED, `rate limit of the ${plan} plan reached (${which} per second)`, {
        retryAfterMs: jittered(wait),
      })
    }
    buckets.forEach((b, i) => b.take(costs[i] ?? 0, now))
    return undefined
  }

  /** The admitted event of `bytes` has been answered. */
  done(socket: SyncSocket, bytes: number): void {
    const state = this.sockets.get(socket)
    if (!state) return
    state.queuedEvents--
    state.queuedBytes -= bytes
  }
}
