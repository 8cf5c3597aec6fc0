/**
 * Fair scheduling across users (issue 15; websockets/fair-scheduler.ts): one
 * user's admitted events run in bounded slices that yield to other users'
 * events, in order within the user; a user's queue is bounded, and what does
 * not fit is refused `RATE_LIMITED` with `retryAfterMs`, changing nothing;
 * nothing admitted is lost.
 */
import { describe, expect, it } from 'vitest'
import { PLANS, type PlanTable } from '../src/models/plans.js'
import { SERVER_LIMITS } from '../src/models/server-limits.js'
import { Metrics } from '../src/utils/metrics.js'
import { FairScheduler } from '../src/websockets/fair-scheduler.js'
import { HeavyUserThrottle } from '../src/websockets/heavy-user-throttle.js'
import { ClipBurst } from './helpers/clip-burst.js'
import { nextTurn, waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { clipsUpdate, type Reply } from './helpers/raw-client.js'
import { NO_RATE_LIMITS } from './helpers/server.js'

const SLICE = { events: 8, ms: 1000, writes: 1000 }
const plans = (queuedEvents: number): PlanTable => ({ free: { ...PLANS.free, queuedEvents }, pro: { ...PLANS.pro, queuedEvents } })

describe('the fair scheduler', () => {
  it("runs a user's burst in slices, in order, with another user's later events in between", async () => {
    const scheduler = new FairScheduler(plans(1000), SLICE, new Metrics())
    const ran: string[] = []
    for (let i = 0; i < 40; i++) scheduler.submit('alice', 'free', () => ran.push(`alice-${i}`))
    // The first slice ran at once; the rest waits for later turns.
    expect(ran).toEqual(Array.from({ length: SLICE.events }, (_, i) => `alice-${i}`))
    expect(scheduler.depths().free).toBe(40 - SLICE.events)
    await nextTurn()
    // Bob's event comes in a later turn, with alice's queue not drained: it runs at once.
    scheduler.submit('bob', 'free', () => ran.push('bob-0'))
    expect(ran[ran.length - 1]).toBe('bob-0')
    await waitFor(() => ran.length === 41, 'every event run')
    const bob = ran.indexOf('bob-0')
    expect(bob).toBeGreaterThan(SLICE.events - 1)
    expect(bob).toBeLessThan(40)
    expect(ran.filter((r) => r.startsWith('alice'))).toEqual(Array.from({ length: 40 }, (_, i) => `alice-${i}`))
  })

  it('cuts a slice by measured time as well as by count, and serves waiting users in turn', async () => {
    // A clock that each event moves 1 ms: the slices do not depend on this machine's speed.
    let clock = 0
    const scheduler = new FairScheduler(plans(1000), { events: 1000, ms: 2, writes: 1000 }, new Metrics(), { now: () => clock })
    const ran: string[] = []
    const event = (user: string) => () => {
      clock += 1
      ran.push(user)
    }
    for (let i = 0; i < 10; i++) scheduler.submit('alice', 'free', event('alice'))
    for (let i = 0; i < 10; i++) scheduler.submit('bob', 'free', event('bob'))
    // Two 1 ms events fill a 2 ms slice: alice's first two, then bob's.
    expect(ran).toEqual(['alice', 'alice', 'bob', 'bob'])
    await waitFor(() => ran.length === 20, 'every event run')
    // Then a slice each, turn by turn.
    expect(ran.join(' ')).toBe(Array.from({ length: 5 }, () => 'alice alice bob bob').join(' '))
  })

  it("holds a user's events while its document has too many writes queued beside another user's, and runs them once they settle", async () => {
    const writes = new Map([['alice', 1000], ['carol', 1]])
    const all = () => [...writes.values()].reduce((a, b) => a + b, 0)
    const scheduler = new FairScheduler(plans(1000), SLICE, new Metrics(), { writesOf: (userId) => writes.get(userId) ?? 0, allWrites: all })
    const ran: string[] = []
    for (let i = 0; i < 3; i++) scheduler.submit('alice', 'free', () => ran.push(`alice-${i}`))
    scheduler.submit('bob', 'free', () => ran.push('bob-0'))
    expect(ran).toEqual(['bob-0'])
    await nextTurn()
    await nextTurn()
    expect(ran).toEqual(['bob-0'])
    writes.set('alice', SLICE.writes - 1)
    await waitFor(() => ran.length === 4, "alice's events once her writes settled")
    expect(ran).toEqual(['bob-0', 'alice-0', 'alice-1', 'alice-2'])
  })

  it("does not hold a user alone with its writes: nobody else's commit waits for them", async () => {
    const writes = new Map([['alice', 1000]])
    const all = () => [...writes.values()].reduce((a, b) => a + b, 0)
    const scheduler = new FairScheduler(plans(1000), SLICE, new Metrics(), { writesOf: (userId) => writes.get(userId) ?? 0, allWrites: all })
    const ran: string[] = []
    for (let i = 0; i < 3; i++) scheduler.submit('alice', 'free', () => ran.push(`alice-${i}`))
    expect(ran).toEqual(['alice-0', 'alice-1', 'alice-2'])
    // Once another user has a write waiting, alice is past her share.
    writes.set('bob', 1)
    scheduler.submit('alice', 'free', () => ran.push('alice-3'))
    expect(ran).toHaveLength(3)
    writes.delete('bob')
    await waitFor(() => ran.length === 4, "alice's event once bob's write settled")
  })

  /** A scheduler whose throttle caps a bursting user at `startPerSecond`, with bob active (5 events in the last window). */
  function besideBob(startPerSecond: number, queuedEvents = 1000, slice = SLICE, writes = new Map<string, number>()) {
    const throttle = new HeavyUserThrottle({ ...SERVER_LIMITS.throttle, startPerSecond }, { timer: false })
    const all = () => [...writes.values()].reduce((a, b) => a + b, 0)
    const scheduler = new FairScheduler(plans(queuedEvents), slice, new Metrics(), { throttle, writesOf: (userId) => writes.get(userId) ?? 0, allWrites: all })
    for (let i = 0; i < 5; i++) scheduler.submit('bob', 'free', () => undefined)
    throttle.adjust()
    return { throttle, scheduler }
  }

  it("runs another user's events at once while the scheduler waits for a capped user's next token", async () => {
    const { throttle, scheduler } = besideBob(2)
    const ran: string[] = []
    await nextTurn()
    for (let i = 0; i < 2 * SLICE.events; i++) scheduler.submit('alice', 'free', () => ran.push('alice'))
    expect(throttle.capped().free).toBe(1)
    await nextTurn()
    await nextTurn()
    // Now the scheduler sleeps until alice's next token (500 ms at 2 a second); bob sends two slices' worth.
    for (let i = 0; i < 2 * SLICE.events; i++) scheduler.submit('bob', 'free', () => ran.push('bob'))
    await nextTurn()
    await nextTurn()
    expect(ran.filter((r) => r === 'bob')).toHaveLength(2 * SLICE.events)
  })

  it("answers at once the queued events of a capped user's socket that has gone, without waiting for its cap", async () => {
    const { throttle, scheduler } = besideBob(1)
    await nextTurn()
    let connected = true
    const answered: number[] = []
    for (let i = 0; i < 3 * SLICE.events; i++) scheduler.submit('alice', 'free', () => answered.push(i), () => connected)
    expect(throttle.capped().free).toBe(1)
    const before = answered.length
    connected = false
    scheduler.submit('bob', 'free', () => undefined) // a turn of the scheduler
    await waitFor(() => answered.length === 3 * SLICE.events, 'every queued event answered', 2000)
    expect(before).toBe(SLICE.events)
    expect(answered).toEqual(Array.from({ length: 3 * SLICE.events }, (_, i) => i))
  })

  it('lifts every cap for good on release (shutdown): a capped queue drains at once, in order', async () => {
    const { throttle, scheduler } = besideBob(1)
    await nextTurn()
    const ran: number[] = []
    for (let i = 0; i < 4 * SLICE.events; i++) scheduler.submit('alice', 'free', () => ran.push(i))
    expect(throttle.capped().free).toBe(1)
    scheduler.release()
    await waitFor(() => ran.length === 4 * SLICE.events, "alice's queue", 2000)
    expect(ran).toEqual(Array.from({ length: 4 * SLICE.events }, (_, i) => i))
    expect(throttle.capped().free).toBe(0)
  })

  it("caps a user whose burst queues while another user is active: its events run at the cap, in order, the other's at once", async () => {
    const { throttle, scheduler } = besideBob(100)
    const ran: string[] = []
    scheduler.submit('bob', 'free', () => ran.push('bob-0'))
    await nextTurn()
    for (let i = 0; i < 40; i++) scheduler.submit('alice', 'free', () => ran.push(`alice-${i}`))
    // The first slice ran; the rest queued, and at a slice's worth queued alice was capped.
    expect(ran).toHaveLength(1 + SLICE.events)
    expect(throttle.capped().free).toBe(1)
    expect(scheduler.refusal('alice', 'free')).toBeUndefined()
    const started = performance.now()
    await new Promise((resolve) => setTimeout(resolve, 100))
    // At 100 events a second, about 10 more in 100 ms (a quarter window's burst at most on top).
    const inTime = (ms: number) => Math.ceil((ms / 1000) * 100) + 3
    expect(ran.length - 1 - SLICE.events).toBeLessThanOrEqual(inTime(performance.now() - started))
    scheduler.submit('bob', 'free', () => ran.push('bob-1'))
    expect(ran[ran.length - 1]).toBe('bob-1')
    await waitFor(() => ran.length === 42, "every one of alice's events")
    expect(ran.filter((r) => r.startsWith('alice'))).toEqual(Array.from({ length: 40 }, (_, i) => `alice-${i}`))
  })

  it('caps a burst at once while its first slice is still being written beside the others: the writes do not hide the burst', async () => {
    // Alice's first slice of 8 events is queued for the group commit with one of bob's; the rest of her burst waits on those writes.
    const writes = new Map<string, number>()
    const { throttle, scheduler } = besideBob(100, 1000, { ...SLICE, writes: SLICE.events }, writes)
    await nextTurn()
    writes.set('bob', 1)
    let ran = 0
    for (let i = 0; i < 3 * SLICE.events; i++) {
      scheduler.submit('alice', 'free', () => {
        ran++
        writes.set('alice', (writes.get('alice') ?? 0) + 1)
      })
    }
    expect(ran).toBe(SLICE.events)
    expect(throttle.capped().free).toBe(1)
    // Once her writes are durable her queue runs at the cap, not a slice a turn.
    writes.delete('alice')
    writes.delete('bob')
    await nextTurn()
    await nextTurn()
    expect(ran).toBeLessThan(2 * SLICE.events)
    await waitFor(() => ran > SLICE.events, 'her queue going on at the cap', 2000)
  })

  it("gives a capped user's full queue the cap's drain time as its retry hint", () => {
    const { scheduler } = besideBob(10, SLICE.events)
    for (let i = 0; i < 2 * SLICE.events; i++) scheduler.submit('alice', 'free', () => undefined)
    const refusal = scheduler.refusal('alice', 'free')
    // 8 queued at 10 a second: 800 ms, jittered.
    expect(refusal?.retryAfterMs).toBeGreaterThanOrEqual(800)
    expect(refusal?.retryAfterMs).toBeLessThanOrEqual(1600)
  })

  it('refuses RATE_LIMITED with retryAfterMs once the queue is full, and runs everything it took', async () => {
    const scheduler = new FairScheduler(plans(5), SLICE, new Metrics())
    let ran = 0
    const taken: number[] = []
    for (let i = 0; i < 30; i++) {
      const refusal = scheduler.refusal('alice', 'pro')
      if (refusal) {
        expect(refusal.code).toBe('RATE_LIMITED')
        expect(refusal.retryAfterMs).toBeGreaterThan(0)
        expect(refusal.message).toMatch(/at most 5 on the pro plan/)
        continue
      }
      taken.push(i)
      scheduler.submit('alice', 'pro', () => ran++)
    }
    expect(taken).toHaveLength(SLICE.events + 5)
    await waitFor(() => ran === taken.length, 'every admitted event run')
    expect(scheduler.refusal('alice', 'pro')).toBeUndefined()
  })
})

describe('fair scheduling on a real server', () => {
  const t = useServer()

  /** A server without rate limits; alice's importer and watcher (with the clip keys in the order they arrive), bob's phone. */
  async function importerBesideBob() {
    await t.start(undefined, NO_RATE_LIMITS)
    const importer = await t.device('alice', 'importer')
    const watcher = await t.device('alice', 'watcher')
    const arrived: string[] = []
    watcher.clips().observe((e) => arrived.push(...e.keysChanged))
    const bob = await t.device('bob', 'phone')
    return { importer, watcher, arrived, bob }
  }

  const metricsText = async (): Promise<string> =>
    (await fetch(`${t.server.url}/metrics`, { headers: { authorization: `Bearer ${t.server.config.adminToken}` } })).text()

  it("a device's 3,000-update burst is applied over many turns, in order, with another user's update in between; all stored", async () => {
    const { importer, watcher, arrived, bob } = await importerBesideBob()
    // The server runs in this process: count its event-loop turns, and note the turn of every update applied.
    let turn = 0
    let counting = true
    const count = () => {
      turn++
      if (counting) setImmediate(count)
    }
    count()
    const applied: { userId: string; turn: number }[] = []
    const sync = t.server.services.sync
    const apply = sync.applyUpdate.bind(sync)
    sync.applyUpdate = (doc, update, author, plan) => {
      applied.push({ userId: author.userId, turn })
      return apply(doc, update, author, plan)
    }
    const burst = new ClipBurst('burst', 3000)
    void burst.send(importer) // awaited in burst.settled() below
    // Bob writes once alice's burst is being applied.
    await waitFor(() => applied.length > 0, 'the burst to start')
    expect(await bob.write(() => bob.addClip('bob-clip', 'from bob'))).toMatchObject({ ok: true })
    await burst.settled(60_000)
    counting = false
    expect(burst.acked()).toHaveLength(3000)
    const alice = applied.filter((a) => a.userId === 'alice')
    const bobAt = applied.findIndex((a) => a.userId === 'bob')
    expect(bobAt).toBeLessThan(applied.length - 1)
    // No more than a slice of alice's updates in one turn.
    const perTurn = new Map<number, number>()
    for (const a of alice) perTurn.set(a.turn, (perTurn.get(a.turn) ?? 0) + 1)
    expect(Math.max(...perTurn.values())).toBeLessThanOrEqual(SERVER_LIMITS.slice.events)
    // In the order sent: the watcher gets alice's clips in burst order.
    await waitFor(() => watcher.clips().size === 3000, 'the burst on the watcher', 30_000)
    expect(arrived).toEqual(burst.ids)
    const metrics = await metricsText()
    expect(metrics).toMatch(/superclip_scheduler_slice_seconds_count\{plan="free"\} [1-9]/)
    expect(metrics).toMatch(/superclip_scheduler_queued_events\{plan="free"\} 0/)
  })

  it("a burst beside another user's steady writes is capped (the gauge shows it), applied in order, all stored; the cap is lifted after", async () => {
    const { importer, watcher, arrived, bob } = await importerBesideBob()
    const throttled = async () => {
      const text = await metricsText()
      return Number(/superclip_scheduler_throttled_users\{plan="free"\} (\d+)/.exec(text)?.[1])
    }
    // Bob writes every 20 ms, before and during alice's burst.
    const bobAcks: Promise<Reply>[] = []
    let n = 0
    const steady = setInterval(() => {
      const ack = bob.write(() => bob.addClip(`bob-${n++}`, 'steady'))
      if (ack) bobAcks.push(ack)
    }, 20)
    try {
      // Bob is active (his rate over a window) before alice's burst.
      await waitFor(() => bobAcks.length >= 10, "bob's first writes")
      const burst = new ClipBurst('burst', 1500)
      void burst.send(importer)
      await waitFor(async () => (await throttled()) === 1, 'alice capped')
      await burst.settled(60_000)
      expect(burst.acked()).toHaveLength(1500)
      await waitFor(() => watcher.clips().size === 1500, 'the burst on the watcher', 30_000)
      expect(arrived).toEqual(burst.ids)
    } finally {
      clearInterval(steady)
    }
    for (const ack of await Promise.all(bobAcks)) expect(ack).toMatchObject({ ok: true })
    // Alice has stopped: her cap goes.
    await waitFor(async () => (await throttled()) === 0, 'the cap lifted')
    const reader = await t.device('bob', 'reader')
    expect(reader.clips().size).toBe(bobAcks.length)
  })

  it('a full queue refuses RATE_LIMITED with retryAfterMs; refused updates change nothing, acknowledged ones are all stored', async () => {
    const lifted = NO_RATE_LIMITS.plans
    await t.start(undefined, { ...NO_RATE_LIMITS, plans: { free: { ...lifted.free, queuedEvents: 50 }, pro: { ...lifted.pro, queuedEvents: 50 } } })
    const importer = await t.device('alice', 'importer')
    // Each clip from a client of its own: a refused one leaves no later one waiting on its clock.
    const ids = Array.from({ length: 2000 }, (_, i) => `clip-${i}`)
    const replies = (await Promise.all(ids.map((id) => importer.socket.emitWithAck('sync:update', { update: clipsUpdate([id]) })))) as Reply[]
    const refused = replies.filter((r) => !r.ok)
    expect(refused.length).toBeGreaterThan(0)
    for (const r of refused) {
      expect(r.error.code).toBe('RATE_LIMITED')
      expect(r.error.retryAfterMs).toBeGreaterThan(0)
    }
    const acked = ids.filter((_, i) => replies[i]?.ok)
    expect(acked.length).toBeGreaterThanOrEqual(50)
    const reader = await t.device('alice', 'reader')
    expect(acked.filter((id) => !reader.clips().has(id))).toEqual([])
    expect(ids.filter((id, i) => !replies[i]?.ok && reader.clips().has(id))).toEqual([])
  })
})
