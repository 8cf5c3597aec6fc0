/**
 * Attaches event handlers to sockets and counts the events being handled, so
 * that a shutdown can wait until every accepted event has been answered.
 * Admitted events run in their user's turn (fair-scheduler.ts).
 */
import type { Ack, ClientToServerEvents } from '../types/events.js'
import { ErrorCode } from '../utils/errors.js'
import type { Logger } from '../utils/logger.js'
import type { Metrics } from '../utils/metrics.js'
import type { AbuseMonitor } from './abuse-monitor.js'
import { payloadBytes, type EventLimiter } from './event-limiter.js'
import type { FairScheduler } from './fair-scheduler.js'
import { checkTokenExpiry } from './middleware/auth.middleware.js'
import { replyError } from './reply.js'
import type { SyncSocket } from './types.js'

export type EventHandler = (payload: unknown) => Promise<Record<string, unknown> | void>

export class EventRouter {
  private inflight = 0
  private idleWaiters: (() => void)[] = []

  constructor(
    readonly log: Logger,
    private readonly limiter: EventLimiter,
    private readonly abuse: AbuseMonitor,
    readonly metrics: Metrics,
    private readonly scheduler: FairScheduler,
  ) {}

  /**
   * Registers `handler` for `event`. The listener is attached synchronously, so
   * nothing a client sends right after connecting is missed (socket.io-client#1527);
   * handlers that need the document await it themselves. Once the socket's
   * token has expired no handler runs: the event is refused with
   * `UNAUTHORIZED` and the socket disconnected (auth.middleware.ts). Then the
   * rate limits (event-limiter.ts): a refused event gets `RATE_LIMITED` and
   * nothing of it runs. Every refusal, there or by the handler, is reported to
   * the abuse monitor, which disconnects a socket that keeps being refused.
   * An admitted event runs in its user's turn: at once, or queued behind the
   * user's earlier events (its queue is bounded: `RATE_LIMITED` when full,
   * checked first so that a refused event takes nothing from the buckets).
   */
  on(socket: SyncSocket, event: keyof ClientToServerEvents, handler: EventHandler): void {
    socket.on(event, (...args: unknown[]) => {
      const last = args[args.length - 1]
      const ack = typeof last === 'function' ? (last as Ack) : undefined
      const payload = ack ? (args.length > 1 ? args[0] : undefined) : args[0]
      this.handle(socket, event, payload, ack, handler)
    })
  }

  /**
   * Runs one event of `socket` through the pipeline `on` describes; `ack`, when
   * given, gets the reply. Resolves once the event is answered; never rejects
   * (a failure is the error reply).
   */
  run(socket: SyncSocket, event: keyof ClientToServerEvents, payload: unknown, ack: Ack | undefined, handler: EventHandler): Promise<void> {
    return new Promise((answered) => this.handle(socket, event, payload, ack, handler, answered))
  }

  /**
   * `run` without a promise of its own: `answered`, when given, is called once
   * the event is answered. A listener's events take this path, so that an
   * event waiting for its commit holds as few objects as it can: a burst's
   * events all wait through the same scavenges (docs/benchmarks.md).
   */
  private handle(
    socket: SyncSocket,
    event: keyof ClientToServerEvents,
    payload: unknown,
    ack: Ack | undefined,
    handler: EventHandler,
    answered?: () => void,
  ): void {
    if (checkTokenExpiry(socket, event, payload, ack, this.log)) {
      this.metrics.eventRefusals.inc({ event, code: ErrorCode.UNAUTHORIZED })
      return answered?.()
    }
    const { userId, plan } = socket.data
    const bytes = payloadBytes(payload)
    const limited = this.scheduler.refusal(userId, plan) ?? this.limiter.admit(socket, bytes)
    if (limited) {
      this.refuse(socket, event, payload, ack, limited)
      return answered?.()
    }
    this.metrics.receivedBytes += bytes
    this.inflight++
    const admitted = performance.now()
    const finish = () => {
      this.limiter.done(socket, bytes)
      this.settled()
      answered?.()
    }
    this.scheduler.submit(userId, plan, () => {
      // Queued events of a socket that has gone are dropped unanswered: none of them was acknowledged
      // (nor is their wait an answer time the throttle should judge others by).
      if (socket.disconnected) return finish()
      const done = () => {
        this.scheduler.answered(userId, performance.now() - admitted)
        finish()
      }
      started(handler, payload).then(
        (result) => {
          try {
            ack?.({ ok: true, ...result })
          } finally {
            done()
          }
        },
        (err: unknown) => {
          try {
            this.refuse(socket, event, payload, ack, err)
          } finally {
            done()
          }
        },
      )
    }, () => socket.connected)
  }

  private refuse(socket: SyncSocket, event: string, payload: unknown, ack: Ack | undefined, err: unknown): void {
    const code = replyError(socket, event, payload, ack, err, this.log)
    this.metrics.eventRefusals.inc({ event, code })
    this.abuse.refused(socket, event, code)
  }

  /** Resolves once no event is being handled (every accepted one has been answered). */
  idle(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  private settled(): void {
    if (--this.inflight > 0) return
    const waiters = this.idleWaiters
    this.idleWaiters = []
    for (const resolve of waiters) resolve()
  }
}

/** The handler's promise, also when it throws before returning one. */
function started(handler: EventHandler, payload: unknown): ReturnType<EventHandler> {
  try {
    return handler(payload)
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)))
  }
}
