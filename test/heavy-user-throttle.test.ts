/**
 * The heavy-user throttle (issue 15; websockets/heavy-user-throttle.ts): a
 * user that runs far more events than the others is capped while they feel
 * it, at once when its events start to queue, never when it is alone; caps
 * shrink while the others' answer times are over the target, grow back when
 * they are not, and are lifted once the user asks for less. Driven by hand:
 * an injected clock and loop utilization, `adjust` called per window.
 */
import { describe, expect, it } from 'vitest'
import { HeavyUserThrottle, type ThrottleLimits } from '../src/websockets/heavy-user-throttle.js'

const LIMITS: ThrottleLimits = {
  windowMs: 100,
  busy: 0.9,
  busyMargin: 0.1,
  targetMs: 5,
  minEvents: 10,
  factor: 4,
  decrease: 0.5,
  increase: 2,
  startPerSecond: 200,
  floorPerSecond: 50,
}

function harness(limits: Partial<ThrottleLimits> = {}) {
  let clock = 0
  let utilization = 0.2
  const throttle = new HeavyUserThrottle({ ...LIMITS, ...limits }, { now: () => clock, utilization: () => utilization, timer: false })
  return {
    throttle,
    advance: (ms: number) => (clock += ms),
    setUtilization: (u: number) => (utilization = u),
    /**
     * One window: each user runs `events[user]` events (`queued` of its
     * events still waiting after its last), and `light` other users one
     * event each, answered in `lightMs`; then `adjust`.
     */
    window(events: Record<string, number>, light = 0, lightMs = 1, queued = 1) {
      for (const [user, n] of Object.entries(events)) for (let i = 0; i < n; i++) throttle.ran(user, 'free', i === n - 1 ? queued : queued + 1)
      for (let i = 0; i < light; i++) {
        throttle.ran(`light-${i}`, 'free', 0)
        throttle.answered(`light-${i}`, lightMs)
      }
      clock += LIMITS.windowMs
      throttle.adjust()
    },
  }
}

/** Cap of `user` now, events per second, read from the time 1,000 of its events take at it. */
function capOf(throttle: HeavyUserThrottle, user: string): number | undefined {
  return throttle.drainMs(user, 1000) === undefined ? undefined : 1000 / ((throttle.drainMs(user, 1000) as number) / 1000)
}

describe('the heavy-user throttle', () => {
  it('never caps a user alone, however much it runs or the loop is busy', () => {
    const h = harness()
    h.setUtilization(1)
    for (let w = 0; w < 5; w++) h.window({ alice: 500 })
    h.throttle.bursting('alice')
    expect(h.throttle.allows('alice')).toBe(true)
    expect(h.throttle.capped()).toEqual({ free: 0, pro: 0 })
  })

  it('caps a user whose events start to queue while another is active, and spreads its events at the cap', () => {
    const h = harness()
    h.window({ bob: 5 })
    // Not above the others yet: alice has run nothing in this window.
    h.throttle.bursting('alice')
    expect(h.throttle.capped()).toEqual({ free: 0, pro: 0 })
    for (let i = 0; i < 64; i++) h.throttle.ran('alice', 'pro', 64)
    h.throttle.bursting('alice')
    expect(h.throttle.capped()).toEqual({ free: 0, pro: 1 })
    expect(h.throttle.allows('alice')).toBe(false)
    expect(h.throttle.waitMs('alice')).toBeCloseTo(1000 / LIMITS.startPerSecond)
    expect(h.throttle.drainMs('alice', 100)).toBeCloseTo((100 / LIMITS.startPerSecond) * 1000)
    h.advance(1000 / LIMITS.startPerSecond)
    expect(h.throttle.allows('alice')).toBe(true)
    h.throttle.ran('alice', 'pro', 10)
    expect(h.throttle.allows('alice')).toBe(false)
    // Bob is not capped.
    expect(h.throttle.allows('bob')).toBe(true)
    expect(h.throttle.waitMs('bob')).toBe(0)
  })

  it("slows a heavy user while the others' answers are over the target, down to the floor; grows it back, then lifts it", () => {
    const h = harness()
    // Alice runs 30 events a window (300/s) beside 25 users of one event each, whose answers take 20 ms.
    h.window({ alice: 30 }, 25, 20)
    // Heavy and the others slowed: capped at half what she ran.
    expect(capOf(h.throttle, 'alice')).toBeCloseTo(150)
    h.window({ alice: 15 }, 25, 20)
    expect(capOf(h.throttle, 'alice')).toBeCloseTo(75)
    h.window({ alice: 10 }, 25, 20)
    expect(capOf(h.throttle, 'alice')).toBeCloseTo(LIMITS.floorPerSecond)
    // The others' answers are fast again: the cap doubles per window.
    h.window({ alice: 5 }, 25, 1)
    expect(capOf(h.throttle, 'alice')).toBeCloseTo(100)
    // Alice runs under half her cap but still has events waiting: kept.
    h.window({ alice: 2 }, 25, 1)
    expect(capOf(h.throttle, 'alice')).toBeCloseTo(200)
    // Nothing waiting any more: lifted.
    h.window({ alice: 2 }, 25, 1, 0)
    expect(capOf(h.throttle, 'alice')).toBeUndefined()
    expect(h.throttle.capped()).toEqual({ free: 0, pro: 0 })
  })

  it('leaves a heavy user alone while the others are not slowed, and judges them only on enough answers', () => {
    const h = harness()
    h.window({ alice: 30 }, 25, 2)
    expect(capOf(h.throttle, 'alice')).toBeUndefined()
    // Five answers, however slow, are too few to judge by.
    h.window({ alice: 30 }, 5, 50)
    expect(capOf(h.throttle, 'alice')).toBeUndefined()
  })

  it('slows a heavy user while the loop is busier than `busy`, whatever the answer times', () => {
    const h = harness()
    h.setUtilization(0.95)
    h.window({ alice: 40 }, 25, 1)
    expect(capOf(h.throttle, 'alice')).toBeCloseTo(200)
  })

  it("raises the loop's threshold to `busyMargin` above what it is while nobody is heavy", () => {
    const h = harness({ busy: 0.3 })
    // The others alone keep the loop 50% busy: a heavy user is slowed only past 60%, not past `busy`.
    h.setUtilization(0.5)
    for (let w = 0; w < 100; w++) h.window({}, 25, 1)
    h.setUtilization(0.55)
    h.window({ alice: 40 }, 25, 1)
    expect(capOf(h.throttle, 'alice')).toBeUndefined()
    h.setUtilization(0.65)
    h.window({ alice: 40 }, 25, 1)
    expect(capOf(h.throttle, 'alice')).toBeCloseTo(200)
    // On a quiet loop `busy` is the threshold, and one busy window among the calm ones does not raise it.
    const quiet = harness({ busy: 0.3 })
    quiet.setUtilization(0.1)
    for (let w = 0; w < 100; w++) quiet.window({}, 25, 1)
    quiet.setUtilization(1)
    quiet.window({}, 25, 1)
    quiet.setUtilization(0.35)
    quiet.window({ alice: 40 }, 25, 1)
    expect(capOf(quiet.throttle, 'alice')).toBeCloseTo(200)
  })

  it('lets a heavy user held under `minEvents` by its cap grow back on a loop the others keep busy', () => {
    const h = harness({ busy: 0.3, decrease: 0.7, increase: 1.15 })
    // Heavy from the first window, before any calm one: the others alone keep the loop 50% busy.
    h.setUtilization(0.5)
    let lowest = Infinity
    for (let w = 0; w < 300; w++) {
      // The user runs what its cap lets it (40 a window uncapped).
      const cap = capOf(h.throttle, 'alice')
      if (cap !== undefined) lowest = Math.min(lowest, cap)
      h.window({ alice: Math.min(40, Math.floor((cap ?? Infinity) / 10)) }, 25, 1)
    }
    expect(lowest).toBeLessThan(100) // it was slowed at first
    expect(capOf(h.throttle, 'alice') ?? Infinity).toBeGreaterThan(300) // and is not held there
  })

  it('does not learn a calm level from a user alone', () => {
    const h = harness({ busy: 0.3 })
    // An import alone keeps the loop 90% busy for a minute: it is never capped, and sets no level.
    h.setUtilization(0.9)
    for (let w = 0; w < 600; w++) h.window({ alice: 40 })
    expect(capOf(h.throttle, 'alice')).toBeUndefined()
    // Others arrive: the loop is over `busy`, so it is slowed.
    h.window({ alice: 40 }, 25, 1)
    expect(capOf(h.throttle, 'alice')).toBeDefined()
  })

  it('does not count a user as heavy next to users of the same rate, from their first window on', () => {
    const h = harness()
    h.setUtilization(1)
    for (let w = 0; w < 5; w++) {
      h.window({ alice: 40 + w, bob: 40, carol: 39 })
      expect(h.throttle.capped(), `window ${w}`).toEqual({ free: 0, pro: 0 })
    }
  })

  it("judges the others' answers against twice what they take while nobody is heavy", () => {
    const h = harness()
    // A slow store: answers take 8 ms while nobody is heavy, so the target is 16 ms, not 5.
    for (let w = 0; w < 20; w++) h.window({}, 25, 8)
    h.window({ alice: 40 }, 25, 12)
    expect(capOf(h.throttle, 'alice')).toBeUndefined()
    h.window({ alice: 40 }, 25, 20)
    expect(capOf(h.throttle, 'alice')).toBeCloseTo(200)
  })

  it('does not cap a heavy user beside others too quiet to feel it, however busy the loop', () => {
    const h = harness()
    h.setUtilization(0.95)
    // Another user's one event every 500 ms: its rate never reaches an event per window.
    for (let w = 0; w < 20; w++) h.window(w % 5 === 0 ? { alice: 100, bob: 1 } : { alice: 100 })
    expect(h.throttle.capped()).toEqual({ free: 0, pro: 0 })
  })

  it('does not cap a queued user that runs no more than the others (a saturated server), nor any user once released', () => {
    const h = harness()
    h.setUtilization(1)
    const users = Array.from({ length: 10 }, (_, i) => `user-${i}`)
    h.window(Object.fromEntries(users.map((u) => [u, 20])))
    for (const u of users) {
      for (let i = 0; i < 20; i++) h.throttle.ran(u, 'free', 64)
      h.throttle.bursting(u)
    }
    expect(h.throttle.capped()).toEqual({ free: 0, pro: 0 })
    h.window({ bob: 5 })
    for (let i = 0; i < 64; i++) h.throttle.ran('alice', 'free', 64)
    h.throttle.bursting('alice')
    expect(h.throttle.capped().free).toBe(1)
    h.throttle.release()
    expect(h.throttle.allows('alice')).toBe(true)
    h.throttle.bursting('alice')
    h.window({ alice: 100 }, 25, 50)
    expect(h.throttle.capped()).toEqual({ free: 0, pro: 0 })
  })
})
