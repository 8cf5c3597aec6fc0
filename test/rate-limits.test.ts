/**
 * Rate limits (issue 4, items 3, 4 and 7; protocol §§2 and 7), over the
 * real server with small limits passed through its config: token buckets of
 * events and bytes per socket and per user, per plan; the bound on what one
 * socket may queue while its document loads; strikes that disconnect a socket
 * that keeps being refused; handshakes per address and failed authentications
 * per address; and the jittered retry hints of every refusal.
 */
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { parseEnv } from '../src/config.js'
import { PLANS, type PlanLimits, type PlanTable } from '../src/models/plans.js'
import { SERVER_LIMITS, type ServerLimits } from '../src/models/server-limits.js'
import { RESTART_RETRY_MS } from '../src/utils/retry.js'
import { useServer } from './helpers/fixture.js'
import { attempt, clipsUpdate, connect, openedSockets, sendUpdate, type Client, type Reply } from './helpers/raw-client.js'
import { NO_RATE_LIMITS, tempDir, tokenFor } from './helpers/server.js'
import { waitFor } from './helpers/device.js'

const plans = (free: Partial<PlanLimits>, pro: Partial<PlanLimits> = {}): PlanTable => ({
  free: { ...NO_RATE_LIMITS.plans.free, ...free },
  pro: { ...NO_RATE_LIMITS.plans.pro, ...pro },
})
const limits = (over: Partial<ServerLimits>): ServerLimits => ({ ...NO_RATE_LIMITS.limits, ...over })
/** A bucket that, within a test, never refills. */
const burstOnly = (burst: number) => ({ perSecond: 0.001, burst })

const rateLimited = { ok: false, error: { code: 'RATE_LIMITED', message: expect.any(String), retryAfterMs: expect.any(Number) } }
const okReply = expect.objectContaining({ ok: true })

describe('rate limits (issue 4, item 4)', () => {
  const t = useServer()
  const opened = openedSockets()

  const client = async (userId: string, deviceId: string, plan: 'free' | 'pro' = 'free'): Promise<Client> =>
    connect(t.server.url, await tokenFor(userId, plan), deviceId, opened)

  /** The clip ids a fresh device of `userId` sees on the server. */
  async function clipsOnServer(userId: string): Promise<string[]> {
    const d = await t.device(userId, `check-${Math.random()}`)
    return [...d.clips().keys()].sort()
  }

  it('events per socket: past the burst, RATE_LIMITED with retryAfterMs, nothing applied, and sync:error says so', async () => {
    await t.start(undefined, { plans: plans({ socketEvents: burstOnly(3) }) })
    const phone = await client('alice', 'phone')
    const replies: Reply[] = []
    for (const id of ['a', 'b', 'c', 'd', 'e']) replies.push(await sendUpdate(phone, clipsUpdate([id])))
    expect(replies).toEqual([okReply, okReply, okReply, rateLimited, rateLimited])
    await waitFor(() => phone.errors.length === 2, 'two sync:errors')
    expect(phone.errors).toEqual([
      expect.objectContaining({ code: 'RATE_LIMITED', event: 'sync:update', retryAfterMs: expect.any(Number) }),
      expect.objectContaining({ code: 'RATE_LIMITED', event: 'sync:update', retryAfterMs: expect.any(Number) }),
    ])
    expect(await clipsOnServer('alice')).toEqual(['a', 'b', 'c'])
    // Another socket of the same user has its own bucket.
    const laptop = await client('alice', 'laptop')
    expect(await sendUpdate(laptop, clipsUpdate(['f']))).toEqual(okReply)
  })

  it('a refused client that waits retryAfterMs gets through', async () => {
    // One token a second: the two sends below cannot take long enough, even on a busy machine, to earn a third.
    await t.start(undefined, { plans: plans({ socketEvents: { perSecond: 1, burst: 2 } }) })
    const phone = await client('alice', 'phone')
    expect(await sendUpdate(phone, clipsUpdate(['a']))).toEqual(okReply)
    expect(await sendUpdate(phone, clipsUpdate(['b']))).toEqual(okReply)
    const refused = await sendUpdate(phone, clipsUpdate(['c']))
    expect(refused).toEqual(rateLimited)
    const wait = refused.ok ? 0 : (refused.error.retryAfterMs ?? 0)
    // The hint is the wait for the next token plus jitter (up to as much again): never more than 2 s here.
    expect(wait).toBeGreaterThan(0)
    expect(wait).toBeLessThanOrEqual(2000)
    await new Promise((r) => setTimeout(r, wait))
    expect(await sendUpdate(phone, clipsUpdate(['c']))).toEqual(okReply)
    expect(await clipsOnServer('alice')).toEqual(['a', 'b', 'c'])
  })

  it('events per user: all sockets of a user share one bucket; another user is not affected', async () => {
    await t.start(undefined, { plans: plans({ userEvents: burstOnly(5) }) })
    const phone = await client('alice', 'phone')
    const laptop = await client('alice', 'laptop')
    const bob = await client('bob', 'phone')
    const replies: Reply[] = []
    for (const [i, c] of [phone, laptop, phone, laptop, phone, laptop, phone].entries()) replies.push(await sendUpdate(c, clipsUpdate([`c${i}`])))
    expect(replies).toEqual([okReply, okReply, okReply, okReply, okReply, rateLimited, rateLimited])
    for (let i = 0; i < 5; i++) expect(await sendUpdate(bob, clipsUpdate([`bob${i}`]))).toEqual(okReply)
    // Any device of alice's (free plan) would be refused now, reads too: look at the loaded document.
    const doc = t.server.services.registry.peek('alice')
    expect([...(doc?.doc.getMap('clips').keys() ?? [])].sort()).toEqual(['c0', 'c1', 'c2', 'c3', 'c4'])
  })

  it('bytes per socket and per user: a large update past the byte burst is refused whole', async () => {
    const update = clipsUpdate(['big'], 'x'.repeat(3000))
    await t.start(undefined, { plans: plans({ socketBytes: burstOnly(5000), userBytes: burstOnly(8000) }) })
    const phone = await client('alice', 'phone')
    const laptop = await client('alice', 'laptop')
    expect(await sendUpdate(phone, update)).toEqual(okReply)
    const second = await sendUpdate(phone, clipsUpdate(['big2'], 'x'.repeat(3000)))
    expect(second).toEqual(rateLimited)
    expect(JSON.stringify(second)).toContain('socket bytes')
    expect(await sendUpdate(laptop, clipsUpdate(['big3'], 'y'.repeat(3000)))).toEqual(okReply)
    const third = await sendUpdate(laptop, clipsUpdate(['big4'], 'z'.repeat(3000)))
    expect(JSON.stringify(third)).toContain('user bytes')
    expect(await clipsOnServer('alice')).toEqual(['big', 'big3'])
  })

  it('per plan: the same burst a free device is refused for passes on pro', async () => {
    await t.start(undefined, { plans: plans({ socketEvents: burstOnly(3) }, { socketEvents: burstOnly(10) }) })
    const free = await client('alice', 'phone', 'free')
    const pro = await client('carol', 'phone', 'pro')
    const freeReplies: Reply[] = []
    const proReplies: Reply[] = []
    for (let i = 0; i < 6; i++) {
      freeReplies.push(await sendUpdate(free, clipsUpdate([`f${i}`])))
      proReplies.push(await sendUpdate(pro, clipsUpdate([`p${i}`])))
    }
    expect(freeReplies.filter((r) => r.ok)).toHaveLength(3)
    expect(proReplies.every((r) => r.ok)).toBe(true)
  })

  it('new Yjs client ids per document: an update from one more fresh Y.Doc past the burst is RATE_LIMITED; known ids write on', async () => {
    await t.start(undefined, { plans: plans({ newClientIds: burstOnly(3) }) })
    const phone = await client('alice', 'phone')
    const docs = ['a', 'b', 'c', 'd'].map(() => new Y.Doc())
    const addClip = (doc: Y.Doc, id: string): Uint8Array => {
      const before = Y.encodeStateVector(doc)
      doc.getMap('clips').set(id, new Y.Map<unknown>([['content', id]]))
      return Y.encodeStateAsUpdate(doc, before)
    }
    const [a, b, c, d] = docs as [Y.Doc, Y.Doc, Y.Doc, Y.Doc]
    expect(await sendUpdate(phone, addClip(a, 'a'))).toEqual(okReply)
    expect(await sendUpdate(phone, addClip(b, 'b'))).toEqual(okReply)
    expect(await sendUpdate(phone, addClip(c, 'c'))).toEqual(okReply)
    const refused = await sendUpdate(phone, addClip(d, 'd'))
    expect(refused).toEqual(rateLimited)
    expect(JSON.stringify(refused)).toContain('new Yjs client ids')
    // A device that keeps its Y.Doc keeps its client id: it writes on.
    expect(await sendUpdate(phone, addClip(a, 'a2'))).toEqual(okReply)
    const doc = t.server.services.registry.peek('alice')
    expect([...(doc?.doc.getMap('clips').keys() ?? [])].sort()).toEqual(['a', 'a2', 'b', 'c'])
  })

  it('the default table: a free device may send 500 updates at once, a pro one far more', () => {
    expect(PLANS.free.socketEvents.burst).toBeGreaterThanOrEqual(500)
    expect(PLANS.pro.socketEvents.burst).toBeGreaterThan(PLANS.free.socketEvents.burst)
    expect(parseEnv({}).limits).toEqual(SERVER_LIMITS)
    expect(parseEnv({ IP_CONNECTIONS_PER_SECOND: '2.5', IP_CONNECTION_BURST: '7' }).limits.ipConnections).toEqual({ perSecond: 2.5, burst: 7 })
    expect(() => parseEnv({ IP_CONNECTION_BURST: '0' })).toThrow(/IP_CONNECTION_BURST/)
  })

  it('what one socket may queue while its document loads is bounded; the events it admitted all apply', async () => {
    const dir = await tempDir()
    // A log of many small updates, so the load takes long enough for the events to pile up behind it.
    const noCompaction = { compactMaxUpdates: 1_000_000, compactMaxBytes: 1 << 30 }
    await t.start(dir, { ...noCompaction, ...NO_RATE_LIMITS })
    const seed = await t.device('alice', 'seed')
    for (let i = 0; i < 3000; i++) seed.addClip(`seed-${i}`, `s${i}`)
    await seed.flushed()
    seed.close()
    await t.start(dir, { ...noCompaction, limits: limits({ socketQueue: { events: 4, bytes: 1 << 20 } }) })
    const phone = await client('alice', 'phone')
    // All ten go out in one write, before the server has loaded the document for this socket.
    const replies = (await Promise.all(
      Array.from({ length: 10 }, (_, i) => phone.socket.emitWithAck('sync:update', { update: clipsUpdate([`q${i}`]) })),
    )) as Reply[]
    expect(replies.slice(0, 4)).toEqual([okReply, okReply, okReply, okReply])
    expect(replies.slice(4)).toEqual(Array(6).fill(rateLimited))
    const ids = (await clipsOnServer('alice')).filter((id) => id.startsWith('q'))
    expect(ids).toEqual(['q0', 'q1', 'q2', 'q3'])
  })

  it('a socket that keeps sending refused events is disconnected, told why; other sockets are not', async () => {
    await t.start(undefined, { limits: limits({ strikes: burstOnly(3) }) })
    const mallory = await client('mallory', 'phone')
    const alice = await client('alice', 'phone')
    const disconnected = new Promise<string>((resolve) => mallory.socket.once('disconnect', resolve))
    const replies: Reply[] = []
    for (let i = 0; i < 3; i++) replies.push((await mallory.socket.emitWithAck('sync:update', { update: 'not binary' })) as Reply)
    expect(replies.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['INVALID_PAYLOAD', 'INVALID_PAYLOAD', 'INVALID_PAYLOAD'])
    expect(mallory.socket.connected).toBe(true)
    mallory.socket.emit('sync:update', { update: new Uint8Array([1, 2, 3]) })
    expect(await disconnected).toBe('io server disconnect')
    expect(mallory.errors.at(-1)).toEqual({
      code: 'RATE_LIMITED',
      message: 'too many refused events; disconnected',
      event: 'abuse',
      retryAfterMs: expect.any(Number),
    })
    expect(await sendUpdate(alice, clipsUpdate(['fine']))).toEqual(okReply)
    // The wait it was told is enforced for that user (any device), not for others.
    expect(await attempt(t.server.url, await tokenFor('mallory'), 'laptop', opened)).toEqual({
      message: 'rate_limited',
      data: { code: 'RATE_LIMITED', message: 'disconnected for refused events; wait before connecting again', retryAfterMs: expect.any(Number) },
    })
    expect(await attempt(t.server.url, await tokenFor('bob'), 'phone', opened)).toBe('connected')
  })

  it('handshakes per address: past the burst, connect_error rate_limited with a retry hint', async () => {
    await t.start(undefined, { limits: limits({ ipConnections: burstOnly(3) }) })
    const token = await tokenFor('alice')
    const results: unknown[] = []
    for (let i = 0; i < 5; i++) results.push(await attempt(t.server.url, token, `d${i}`, opened))
    const refusal = {
      message: 'rate_limited',
      data: { code: 'RATE_LIMITED', message: 'too many connections from this address', retryAfterMs: expect.any(Number) },
    }
    expect(results).toEqual(['connected', 'connected', 'connected', refusal, refusal])
  })

  it('a rate_limited refusal is answered once the wait it names has passed, with what is left of it (0)', async () => {
    // 4 handshakes a second: the second one at once waits 250-500 ms (jittered) for a token.
    await t.start(undefined, { limits: limits({ ipConnections: { perSecond: 4, burst: 1 }, refusalHold: { ms: 5000, held: 10 } }) })
    const token = await tokenFor('alice')
    expect(await attempt(t.server.url, token, 'd0', opened)).toBe('connected')
    const refused = (await attempt(t.server.url, token, 'd1', opened)) as { message: string; data: { retryAfterMs: number } }
    // Nothing left of the wait: it was held for all of it, so a client that reconnects at once is let in.
    expect(refused).toEqual({ message: 'rate_limited', data: { code: 'RATE_LIMITED', message: 'too many connections from this address', retryAfterMs: 0 } })
    expect(await attempt(t.server.url, token, 'd2', opened)).toBe('connected')
  })

  it('past the refusals it may hold at once, a rate_limited refusal is answered at once with its whole wait', async () => {
    await t.start(undefined, { limits: limits({ ipConnections: burstOnly(1), refusalHold: { ms: 1000, held: 1 } }) })
    const token = await tokenFor('alice')
    expect(await attempt(t.server.url, token, 'd0', opened)).toBe('connected')
    const order: string[] = []
    const first = (attempt(t.server.url, token, 'd1', opened) as Promise<{ data: { retryAfterMs: number } }>).finally(() => order.push('first'))
    await waitFor(() => opened.length === 2 && opened[1]?.io.engine?.readyState === 'open', 'the first refused handshake to be held')
    const second = (await attempt(t.server.url, token, 'd2', opened)) as { data: { retryAfterMs: number } }
    order.push('second')
    // The hold is full: the second is refused at once, told its whole wait (far beyond the 1 s hold).
    expect(second.data.retryAfterMs).toBeGreaterThan(1000)
    // The first is answered after it, once held its 1 s, with the rest of its wait.
    expect((await first).data.retryAfterMs).toBeGreaterThan(0)
    expect(order).toEqual(['second', 'first'])
  })

  it('failed authentications per address: past the burst, even a valid token is refused from that address', async () => {
    await t.start(undefined, { limits: limits({ ipAuthFailures: burstOnly(3) }) })
    const results: unknown[] = []
    for (let i = 0; i < 3; i++) results.push(await attempt(t.server.url, 'forged.token.here', `d${i}`, opened))
    expect(results).toEqual(Array(3).fill(expect.objectContaining({ message: 'unauthorized' })))
    expect(await attempt(t.server.url, await tokenFor('alice'), 'good', opened)).toEqual({
      message: 'rate_limited',
      data: { code: 'RATE_LIMITED', message: 'too many failed authentications from this address', retryAfterMs: expect.any(Number) },
    })
  })

})

describe('shutdown retry hints (issue 4, item 7)', () => {
  const t = useServer()
  const opened = openedSockets()

  it('on shutdown every socket is told UNAVAILABLE with retryAfterMs and left to reconnect by itself', async () => {
    await t.start()
    const phone = await connect(t.server.url, await tokenFor('alice'), 'phone', opened)
    // A device that reconnects (connect() turns reconnection off: turn it back on for this one).
    phone.socket.io.reconnection(true)
    const reason = new Promise<string>((resolve) => phone.socket.once('disconnect', resolve))
    await t.server.stop()
    expect(await reason).toBe('transport close')
    expect(phone.socket.active).toBe(true) // socket.io-client will reconnect with its own backoff
    expect(phone.errors).toEqual([
      { code: 'UNAVAILABLE', message: 'the server is shutting down; connect again', event: 'shutdown', retryAfterMs: expect.any(Number) },
    ])
    phone.socket.io.reconnection(false)
    phone.socket.disconnect()
  })

  it('retry hints are jittered: sockets told the same wait at the same moment get different ones', async () => {
    await t.start()
    const token = await tokenFor('alice', 'pro')
    const sockets = await Promise.all(Array.from({ length: 8 }, (_, i) => connect(t.server.url, token, `d${i}`, opened)))
    await t.server.stop()
    await waitFor(() => sockets.every((c) => c.errors.some((e) => e.event === 'shutdown')), 'every shutdown notice')
    // One base wait (RESTART_RETRY_MS) for every socket: without jitter all eight would be equal.
    const waits = sockets.map((c) => c.errors.find((e) => e.event === 'shutdown')?.retryAfterMs)
    expect(waits.every((w) => w !== undefined && w >= RESTART_RETRY_MS && w <= 2 * RESTART_RETRY_MS + 1)).toBe(true)
    expect(new Set(waits).size).toBeGreaterThan(1)
  })
})
