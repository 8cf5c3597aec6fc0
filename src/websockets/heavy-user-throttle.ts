/**
 * A rate cap for a user that takes far more of the server than the others
 * while they feel it (issue 15). Slices (fair-scheduler.ts) order a bursting
 * user's events between the others', but they do not bound its share: with
 * the loop never idle, a bulk import got almost every turn, its acks and
 * commits filled the rest, the store's thread was left short of CPU on a
 * small machine, and the other users' acks took 10–20× longer. Smaller
 * slices did not help: the loop stays just as busy, in more turns.
 *
 * Every `windowMs`, the events each user ran are counted, and two things
 * are read: the event loop's utilization, and the time the other users'
 * events took from admission to answer (their 90th percentile, from at least
 * 20 answers; a write is answered once durable, so this includes waiting for
 * the group commit, which the loop's utilization does not show). A user is
 * heavy when it ran at least `minEvents` in the window and its rate is more
 * than `factor` times the other active users' mean (a user alone is never
 * heavy). While the others are there to feel it (their rates add up to an
 * event per window) and slowed (the loop busier than `busy`, or than
 * `busyMargin` above its utilization while nobody was heavy if that is
 * more, up to 0.9; or their p90 over the target: `targetMs`, or twice their
 * p90 while nobody was heavy or capped if that is more), each heavy user's
 * rate is capped below what it ran (×`decrease`, never below
 * `floorPerSecond`). Otherwise, while the others' p90 is under half the
 * target (or there are too few answers to tell), caps grow (×`increase`).
 * A cap is lifted when its user is alone or, with nothing of it waiting,
 * ran under half of it or is back within `factor / 2` times the others'
 * mean. A burst is not left a whole
 * window: a user whose queue reaches a slice (held by its own writes or not)
 * while the others are active, and that ran more than `factor` times their
 * mean in this window, is capped at once at `startPerSecond`. At
 * shutdown `release` lifts every cap for good.
 *
 * A capped user's events wait in its queue (in order; nothing is dropped), so
 * its acks and commits slow with them; a client that keeps writing fills its
 * queue and is refused `RATE_LIMITED`, with the cap's drain time as the hint.
 * Events of a socket that has gone do not wait for the cap (fair-scheduler.ts).
 */
import type { Plan } from '../types/events.js'
import { TokenBucket, type Rate } from '../utils/token-bucket.js'

export interface ThrottleLimits {
  /** How often rates, the loop's utilization and the others' answer times are read, ms. */
  windowMs: number
  /**
   * Loop utilization (0–1) above which heavy users are slowed: at least
   * this, and at least `busyMargin` above what it is while nobody is heavy
   * (so that a server busy with its normal users does not hold every heavy
   * user at the floor).
   */
  busy: number
  /** How far above its utilization while nobody is heavy (its calm level) the loop may go before heavy users are slowed. */
  busyMargin: number
  /**
   * The other users' 90th-percentile answer time, ms, above which heavy users
   * are slowed: at least this, and at least twice what it is while nobody is
   * heavy (so a slow disk does not hold every heavy user at the floor).
   */
  targetMs: number
  /** Events in one window under which a user is never heavy. */
  minEvents: number
  /** How many times the other active users' mean rate makes a user heavy. */
  factor: number
  /** A cap's factor per window while the others are slowed, and while they are not (their p90 under half the target). */
  decrease: number
  increase: number
  /** The cap of a user whose events start to queue (more than a slice at once) while others are active, events per second. */
  startPerSecond: number
  /** The lowest cap, events per second: a capped user always progresses. */
  floorPerSecond: number
}

interface UserRate {
  plan: Plan
  /** Events run in the current window. */
  count: number
  /** Events per window, exponentially weighted: who is active, and how much. */
  average: number
  /** Answer times of its events in the current window, ms (at most `MAX_SAMPLES`). */
  answers: number[]
  /** Its events waiting in the scheduler's queue when it last ran one. */
  queued: number
}

/** How much a window's count weighs in a user's average. */
const WEIGHT = 0.3
/** How much a calm window's utilization weighs in the calm level: about the last 2 s, so one busy window does not move it. */
const CALM_UTILIZATION_WEIGHT = 0.05
/** The loop's threshold at most, however busy the calm level: past it, heavy users are always slowed. */
const MAX_BUSY = 0.9
/** An average under this and the user is no longer active. */
const INACTIVE = 0.05
/** Answer times kept per user and window, and in all (the percentile's sort stays small with thousands of users). */
const MAX_SAMPLES = 32
const MAX_ALL_SAMPLES = 2048
/** Answer times of other users needed in a window to judge their latency: fewer, and nobody is there to feel a heavy user. */
const MIN_SAMPLES = 20

export class HeavyUserThrottle {
  private readonly users = new Map<string, UserRate>()
  /** Capped users' buckets: their rate, at most a quarter window's worth at once; empty at first (the user has just run its share). */
  private readonly caps = new Map<string, TokenBucket>()
  private timer: NodeJS.Timeout | undefined
  private windowStart = 0
  /** The users' 90th-percentile answer time in windows where nobody is heavy, ms (exponentially weighted; 0 until known). */
  private calmP90 = 0
  /**
   * The loop's utilization in windows where nobody is heavy and others are active (exponentially weighted from 0:
   * it reads low for the first seconds, where the threshold is `busy`).
   */
  private calmUtilization = 0
  /** The users neither heavy nor capped at the last window, and the sum of their averages. */
  private readonly calmOnes = new Set<string>()
  private calmTotal = 0
  /** Shutting down: nobody is capped any more (the queues drain as fast as they can). */
  private released = false
  private readonly now: () => number
  private readonly utilization: () => number
  private readonly timed: boolean

  constructor(
    private readonly limits: ThrottleLimits,
    options: {
      now?: () => number
      /** The event loop's utilization since the previous call, 0–1. */
      utilization?: () => number
      /** False: no timer; the caller runs `adjust` once per window (tests). */
      timer?: boolean
    } = {},
  ) {
    this.now = options.now ?? (() => performance.now())
    this.utilization = options.utilization ?? loopUtilization()
    this.timed = options.timer ?? true
    this.windowStart = this.now()
    if (!(limits.windowMs > 0 && limits.floorPerSecond > 0 && limits.startPerSecond > 0)) {
      throw new Error('throttle limits: windowMs, floorPerSecond and startPerSecond must be positive')
    }
  }

  /** Whether `userId` may run one more event now. */
  allows(userId: string): boolean {
    return this.waitMs(userId) === 0
  }

  /** Ms until `userId` may run one more event (0 if it may now or is not capped). */
  waitMs(userId: string): number {
    return this.caps.get(userId)?.waitMs(1, this.now()) ?? 0
  }

  /** How long `queued` events of `userId` take at its cap, ms, or undefined when it is not capped. */
  drainMs(userId: string, queued: number): number | undefined {
    const cap = this.caps.get(userId)
    return cap ? (queued / cap.perSecond) * 1000 : undefined
  }

  /**
   * `userId`'s events start to queue: it sent more than a slice at once. If
   * the other users are active (their rates add up to an event per window)
   * and it has run more than `factor` times their mean in this window, it is
   * capped at once at `startPerSecond`: the next window is too late for a
   * burst, whose first commits already hold everyone's.
   */
  bursting(userId: string): void {
    if (this.released || this.caps.has(userId)) return
    const user = this.users.get(userId)
    // A user that has run nothing in this window is not above anyone.
    if (!user || this.calmTotal < 1) return
    // The others: the users neither heavy nor capped at the last window, this one aside if it was one of them.
    const wasCalm = this.calmOnes.has(userId)
    const others = this.calmOnes.size - (wasCalm ? 1 : 0)
    const othersTotal = this.calmTotal - (wasCalm ? user.average : 0)
    if (others === 0 || othersTotal < 1) return
    if (user.count <= this.limits.factor * Math.max(1, othersTotal / others)) return
    this.caps.set(userId, new TokenBucket(this.rate(this.limits.startPerSecond), this.now(), 0))
  }

  /** The server shuts down: every cap is lifted for good, and the timer stops. */
  release(): void {
    this.released = true
    this.caps.clear()
    this.stop()
  }

  /** Counts one event of `userId` run now, with `queued` more of it waiting; a capped user spends a token. */
  ran(userId: string, plan: Plan, queued: number): void {
    let user = this.users.get(userId)
    if (!user) this.users.set(userId, (user = { plan, count: 0, average: 0, answers: [], queued }))
    user.plan = plan
    user.queued = queued
    user.count++
    this.caps.get(userId)?.take(1, this.now())
    if (this.timed && !this.timer && !this.released) {
      this.windowStart = this.now()
      this.utilization() // the first window's utilization starts now
      this.timer = setInterval(() => this.adjust(), this.limits.windowMs)
      this.timer.unref()
    }
  }

  /** One event of `userId` answered `ms` after it was admitted. */
  answered(userId: string, ms: number): void {
    const answers = this.users.get(userId)?.answers
    if (answers && answers.length < MAX_SAMPLES) answers.push(ms)
  }

  /** Users capped now, by plan. */
  capped(): Record<Plan, number> {
    const byPlan: Record<Plan, number> = { free: 0, pro: 0 }
    for (const userId of this.caps.keys()) {
      const plan = this.users.get(userId)?.plan
      if (plan) byPlan[plan]++
    }
    return byPlan
  }

  /** The window's end: reads what each user ran and what the others felt, and moves the caps. */
  adjust(): void {
    const now = this.now()
    const seconds = Math.max(0.001, (now - this.windowStart) / 1000)
    this.windowStart = now
    const utilization = this.utilization()
    const { busy, busyMargin, targetMs, minEvents, factor, decrease, increase, floorPerSecond } = this.limits
    let total = 0
    for (const [userId, user] of this.users) {
      user.average += (user.count - user.average) * WEIGHT
      if (user.average < INACTIVE && user.count === 0) {
        this.users.delete(userId)
        this.caps.delete(userId)
      } else total += user.average
    }

    const heavy = new Set<string>()
    for (const [userId, user] of this.users) {
      // Both sides weighted alike: users that start together ramp up together.
      const othersMean = this.users.size > 1 ? (total - user.average) / (this.users.size - 1) : Infinity
      if (user.count >= minEvents && user.average > factor * Math.max(WEIGHT, othersMean)) heavy.add(userId)
      const cap = this.caps.get(userId)
      // Lifted: alone; or, with nothing of it waiting (a capped user's rate says nothing of what it asks for while
      // its queue holds events), running under half its cap or back within half the heavy factor of the others.
      if (cap && (othersMean === Infinity || (user.queued === 0 && (user.count < cap.perSecond * seconds * 0.5 || user.average <= (factor / 2) * othersMean)))) {
        this.caps.delete(userId)
      }
    }
    this.calmTotal = 0
    this.calmOnes.clear()
    for (const [userId, user] of this.users) {
      if (heavy.has(userId) || this.caps.has(userId)) continue
      this.calmTotal += user.average
      this.calmOnes.add(userId)
    }
    // 0 when the calm users gave too few answers in the window to judge their latency.
    const p90 = this.calmP90Now()
    if (heavy.size === 0 && this.caps.size === 0) {
      if (p90 > 0) this.calmP90 = this.calmP90 === 0 ? p90 : this.calmP90 + (p90 - this.calmP90) * WEIGHT
    } else if (!this.released) {
      const target = Math.max(targetMs, 2 * this.calmP90)
      const busyNow = Math.max(busy, Math.min(MAX_BUSY, this.calmUtilization + busyMargin))
      // The others must be there to feel it: their rates add up to an event per window at least. Only heavy users
      // are slowed; caps whose users are no longer heavy may grow meanwhile (else one held below `minEvents` by its
      // cap, on a loop the others keep over the threshold, would stay there).
      if (this.calmTotal >= 1 && heavy.size > 0 && (utilization > busyNow || p90 > target)) {
        for (const userId of heavy) {
          const ran = (this.users.get(userId)?.count ?? 0) / seconds
          const cap = this.caps.get(userId)
          const perSecond = Math.max(floorPerSecond, Math.min(ran, cap?.perSecond ?? ran) * decrease)
          if (cap) cap.retune(this.rate(perSecond), now)
          else this.caps.set(userId, new TokenBucket(this.rate(perSecond), now, 0))
        }
      } else if (p90 < target / 2) {
        for (const cap of this.caps.values()) cap.retune(this.rate(cap.perSecond * increase), now)
      }
    }
    // The loop's calm level: windows where nobody is heavy (a capped user runs within its cap) and others are there
    // (a user alone, never heavy, would teach it its own load).
    if (heavy.size === 0 && this.users.size > 1 && this.calmTotal >= 1) {
      this.calmUtilization += (utilization - this.calmUtilization) * CALM_UTILIZATION_WEIGHT
    }
    for (const user of this.users.values()) {
      user.count = 0
      user.answers.length = 0
    }
    if (this.users.size === 0) this.stop()
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** The 90th percentile of this window's answer times of the calm users, ms (0 with too few). */
  private calmP90Now(): number {
    const answers: number[] = []
    for (const userId of this.calmOnes) {
      if (answers.length >= MAX_ALL_SAMPLES) break
      answers.push(...(this.users.get(userId)?.answers ?? []))
    }
    if (answers.length < MIN_SAMPLES) return 0
    answers.sort((a, b) => a - b)
    return answers[Math.floor(answers.length * 0.9)] ?? 0
  }

  /** A cap of `perSecond`: at most a quarter window's worth at once, so a capped user's events spread over the window. */
  private rate(perSecond: number): Rate {
    return { perSecond, burst: Math.max(1, (perSecond * this.limits.windowMs) / 4000) }
  }
}

/** The event loop's utilization since the previous call (perf_hooks). */
function loopUtilization(): () => number {
  let last = performance.eventLoopUtilization()
  return () => {
    const next = performance.eventLoopUtilization()
    const { utilization } = performance.eventLoopUtilization(next, last)
    last = next
    return utilization
  }
}
