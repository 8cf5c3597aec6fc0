/**
 * `GET /admin/metrics` (protocol §8: `/admin/*` needs the admin bearer
 * token): event-loop delay, connections, loaded documents and the counters of
 * the rate limits and abuse checks.
 */
import { describe, expect, it } from 'vitest'
import { useServer } from './helpers/fixture.js'
import { clipsUpdate, connect, openedSockets, sendUpdate } from './helpers/raw-client.js'
import { NO_RATE_LIMITS, tokenFor } from './helpers/server.js'

async function metrics(url: string, auth?: string, query = ''): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${url}/admin/metrics${query}`, auth === undefined ? {} : { headers: { authorization: auth } })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

describe('GET /admin/metrics', () => {
  const t = useServer()
  const opened = openedSockets()

  it('refuses a missing or wrong admin token with 401', async () => {
    const { url, config } = await t.start()
    const unauthorized = { status: 401, body: { error: { code: 'UNAUTHORIZED', message: expect.any(String) } } }
    expect(await metrics(url)).toEqual(unauthorized)
    expect(await metrics(url, `Bearer ${config.adminToken}x`)).toEqual(unauthorized)
    expect(await metrics(url, config.adminToken)).toEqual(unauthorized)
    expect((await metrics(url, `Bearer ${config.adminToken}`, '?reset=maybe')).status).toBe(400)
  })

  it('counts connections, documents and refusals; the event-loop window resets on request', async () => {
    const { url, config } = await t.start(undefined, {
      plans: { ...NO_RATE_LIMITS.plans, free: { ...NO_RATE_LIMITS.plans.free, socketEvents: { perSecond: 0.001, burst: 1 } } },
    })
    const auth = `Bearer ${config.adminToken}`
    const phone = await connect(url, await tokenFor('alice'), 'phone', opened)
    expect(await sendUpdate(phone, clipsUpdate(['a']))).toEqual(expect.objectContaining({ ok: true }))
    expect(await sendUpdate(phone, clipsUpdate(['b']))).toEqual(expect.objectContaining({ ok: false }))
    expect(await phone.socket.emitWithAck('sync:update', { update: 'text' })).toEqual(expect.objectContaining({ ok: false }))
    const first = await metrics(url, auth, '?reset=true')
    expect(first.status).toBe(200)
    expect(first.body).toEqual({
      eventLoopDelayMs: { maxMs: expect.any(Number), p99Ms: expect.any(Number), meanMs: expect.any(Number), windowMs: expect.any(Number) },
      connections: 1,
      documentsLoaded: 1,
      refusals: { rateLimited: 2, invalid: 0, disconnected: 0, authFailures: 0, connectionsRefused: 0 },
    })
    // The limiter runs before validation: the bad payload was refused for its rate, not as invalid.
    const second = await metrics(url, auth)
    const windowMs = (m: typeof first) => (m.body.eventLoopDelayMs as { windowMs: number }).windowMs
    // The reset started a new window: the second is shorter than the first (without a reset it is always longer).
    expect(windowMs(second)).toBeLessThan(windowMs(first))
    phone.socket.disconnect()
  })
})
