/**
 * Fair scheduling of admitted events across users (issue 15). Socket.IO
 * hands over every packet of one network read in one go: a burst of 1,000
 * updates from one socket used to be applied back to back, and every other
 * user's events and acks waited behind them.
 *
 * Each user's events run in FIFO order. An event runs at once while its user
 * has nothing queued and has spent less than a slice in this turn of the
 * event loop: `slice.events` events or `slice.ms` of measured time (the
 * handler's synchronous part, where an update is checked and applied; its
 * write is awaited elsewhere). Past that, the user's events wait in its
 * queue, and the queues are drained once per turn, after the network reads
 * (`setImmediate`): a slice of each user in turn, round robin, until the
 * drain itself has run a slice's time; the rest waits for the next turn, so
 * other users' reads, acks and events come in between.
 *
 * What a user's events cost does not end with them: their writes go into
 * the next group commit, which every user's writes wait for. A user whose
 * document has `slice.writes` writes queued or being written, while another
 * user has writes of its own waiting too, waits (its events queue) until
 * they are fewer, so one user's share of a commit stays bounded. A user
 * alone may fill the commits.
 *
 * Slices bound how long a user holds the others in one turn, not its share
 * of the server: a user far above the others while they are slowed is also
 * capped to a rate (`throttle`, heavy-user-throttle.ts); its events wait in
 * its queue for the cap's tokens.
 *
 * A user's queue holds at most its plan's `queuedEvents`; `refusal` says
 * when it is full, before the event takes anything from the rate limits, and
 * the event is refused `RATE_LIMITED` with a `retryAfterMs` from the queue's
 * drain time (measured, or at its cap). Queue depths, slice times and capped
 * users are metrics, by plan.
 */
import type { PlanTable } from '../models/plans.js'
import type { SliceLimits } from '../models/server-limits.js'
import type { Plan } from '../types/events.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import type { Metrics } from '../utils/metrics.js'
import { jittered } from '../utils/retry.js'
import type { HeavyUserThrottle } from './heavy-user-throttle.js'

/** Bounds of a queue-full retry hint, ms. */
const MIN_RETRY_MS = 50
const MAX_RETRY_MS = 10_000
/** The first guess of an event's cost before any is measured, ms. */
const INITIAL_COST_MS = 0.1

type Task = () => void

/** A queued event: `live` false once its socket has gone (it then runs at once, as the no-op it is). */
interface Queued {
  run: Task
  live: () => boolean
}

const ALWAYS = (): boolean => true

interface UserState {
  plan: Plan
  queue: Queued[]
  /** This turn: events run and their measured time, ms. */
  events: number
  ms: number
}

export class FairScheduler {
  private readonly users = new Map<string, UserState>()
  /** Users with queued events, in the order they are served (a served user goes to the back). */
  private readonly waiting = new Set<string>()
  /** Users that ran events this turn (their turn's spend is reset at the next tick); a new Set each tick (see read-pacer.ts). */
  private spent = new Set<string>()
  private tickScheduled = false
  /** The timer of a tick scheduled for later (every waiting user held), which an immediate tick replaces. */
  private laterTimer: NodeJS.Timeout | undefined
  /** Mean measured cost of an event, ms (exponentially weighted): the queue-full retry hint. */
  private costMs = INITIAL_COST_MS

  private readonly writesOf: (userId: string) => number
  private readonly allWrites: () => number
  private readonly now: () => number
  private readonly throttle: HeavyUserThrottle | undefined

  constructor(
    private readonly plans: PlanTable,
    private readonly slice: SliceLimits,
    private readonly metrics: Metrics,
    options: {
      /** Writes of the user's document queued or being written. */
      writesOf?: (userId: string) => number
      /** Writes of every document queued or being written. */
      allWrites?: () => number
      now?: () => number
      /** Caps the rate of a user that takes far more than the others while they feel it. */
      throttle?: HeavyUserThrottle
    } = {},
  ) {
    this.writesOf = options.writesOf ?? (() => 0)
    this.allWrites = options.allWrites ?? (() => 0)
    this.now = options.now ?? (() => performance.now())
    this.throttle = options.throttle
    metrics.readSchedulerFrom(
      () => this.depths(),
      () => this.throttle?.capped(),
    )
  }

  /** The refusal for one more event of `userId` when its queue is full, else undefined. */
  refusal(userId: string, plan: Plan): SyncError | undefined {
    const queued = this.users.get(userId)?.queue.length ?? 0
    const limit = this.plans[plan].queuedEvents
    if (queued < limit) return undefined
    const drainMs = Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, this.throttle?.drainMs(userId, queued) ?? queued * this.costMs))
    return new SyncError(ErrorCode.RATE_LIMITED, `too many events of this user waiting to be processed (at most ${limit} on the ${plan} plan)`, {
      retryAfterMs: jittered(drainMs),
    })
  }

  /**
   * Runs `task` now if `userId` has slice left in this turn and nothing
   * queued, else queues it (see `refusal`). `live`: false once the event's
   * socket has gone, so that a queued event of it does not wait for the
   * user's cap.
   */
  submit(userId: string, plan: Plan, task: Task, live: () => boolean = ALWAYS): void {
    let user = this.users.get(userId)
    if (!user) this.users.set(userId, (user = { plan, queue: [], events: 0, ms: 0 }))
    user.plan = plan
    if (user.queue.length === 0 && this.hasSlice(userId, user)) {
      this.run(userId, user, task)
    } else {
      user.queue.push({ run: task, live })
      this.waiting.add(userId)
      // A slice or more waiting: the throttle may cap it at once. It judges by what the user ran in its window
      // against the others, so a burst held by its own writes is capped (they always hold it after its first slice).
      if (user.queue.length >= this.slice.events) this.throttle?.bursting(userId)
    }
    this.scheduleTick()
  }

  /** Shutdown: caps are lifted, so that the queues drain as fast as they can. */
  release(): void {
    this.throttle?.release()
    this.scheduleTick()
  }

  /** One event of `userId` answered `ms` after it was admitted (what the others feel of a heavy user). */
  answered(userId: string, ms: number): void {
    this.throttle?.answered(userId, ms)
  }

  /** Events queued now, by plan. */
  depths(): Record<Plan, number> {
    const depths: Record<Plan, number> = { free: 0, pro: 0 }
    for (const userId of this.waiting) {
      const user = this.users.get(userId)
      if (user) depths[user.plan] += user.queue.length
    }
    return depths
  }

  private hasSlice(userId: string, user: UserState): boolean {
    return user.events < this.slice.events && user.ms < this.slice.ms && !this.overWrites(userId) && (this.throttle?.allows(userId) ?? true)
  }

  /** Past its share of the group commit while another user's writes wait with it. */
  private overWrites(userId: string): boolean {
    const own = this.writesOf(userId)
    return own >= this.slice.writes && this.allWrites() > own
  }

  private run(userId: string, user: UserState, task: Task): void {
    const started = this.now()
    try {
      task()
    } finally {
      const ms = this.now() - started
      user.events++
      user.ms += ms
      this.costMs += (ms - this.costMs) / 64
      this.spent.add(userId)
      this.throttle?.ran(userId, user.plan, user.queue.length)
    }
  }

  /**
   * The next turn; `laterMs`: every waiting user waits for its writes or its
   * cap, so none of them can run before then. An event submitted meanwhile
   * replaces that timer with the next turn.
   */
  private scheduleTick(laterMs?: number): void {
    if (this.tickScheduled) {
      if (laterMs !== undefined || !this.laterTimer) return
      clearTimeout(this.laterTimer)
    }
    this.tickScheduled = true
    this.laterTimer = undefined
    if (laterMs === undefined) setImmediate(() => this.tick())
    else this.laterTimer = setTimeout(() => this.tick(), laterMs)
  }

  /** A new turn: every user's slice is whole again; then one drain of the queues. */
  private tick(): void {
    this.tickScheduled = false
    this.laterTimer = undefined
    const spent = this.spent
    this.spent = new Set()
    for (const userId of spent) {
      const user = this.users.get(userId)
      if (!user) continue
      this.metrics.observeSlice(user.plan, user.ms / 1000)
      user.events = 0
      user.ms = 0
      if (user.queue.length === 0) this.users.delete(userId)
    }
    this.drain()
  }

  /** Runs the events at the head of `user`'s queue whose socket has gone: each only answers itself (nothing is applied). */
  private dropDead(user: UserState): void {
    while (user.queue.length > 0 && !(user.queue[0] as Queued).live()) (user.queue.shift() as Queued).run()
  }

  private drain(): void {
    const started = this.now()
    /** When a user held by its writes (looked at again in 1 ms) or by its cap may run. */
    let laterMs = Infinity
    for (const userId of [...this.waiting]) {
      // A waiting user has a queue, and a user with a queue is never dropped from `users`.
      const user = this.users.get(userId) as UserState
      this.dropDead(user)
      if (user.queue.length === 0) {
        this.waiting.delete(userId)
        if (!this.spent.has(userId)) this.users.delete(userId) // nothing ran: no spend to reset next turn
        continue
      }
      if (!this.hasSlice(userId, user)) {
        // Held: keeps its place.
        laterMs = Math.min(laterMs, Math.max(1, this.throttle?.waitMs(userId) ?? 0))
        continue
      }
      while (user.queue.length > 0 && this.hasSlice(userId, user)) {
        this.run(userId, user, (user.queue.shift() as Queued).run)
        this.dropDead(user)
      }
      // Served: to the back of the line, or out of it.
      this.waiting.delete(userId)
      if (user.queue.length > 0) this.waiting.add(userId)
      if (this.now() - started >= this.slice.ms) break
    }
    // Something ran (its spend is reset next turn, and the queues go on), or every waiting user is held.
    if (this.spent.size > 0) this.scheduleTick()
    else if (this.waiting.size > 0) this.scheduleTick(laterMs)
  }
}
