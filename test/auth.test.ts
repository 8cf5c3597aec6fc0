import { SignJWT, UnsecuredJWT } from 'jose'
import { io } from 'socket.io-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TEST_SECRET, startServer, tokenFor, type TestServer } from './helpers/server.js'

interface Refusal {
  message: string
  data?: { code: string; message: string }
}

describe('handshake authentication (protocol §1)', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startServer()
  })
  afterAll(async () => {
    await server.stop()
  })

  function attempt(auth: Record<string, unknown>): Promise<{ connected: true } | { connected: false; err: Refusal }> {
    const socket = io(server.url, { auth, transports: ['websocket'], reconnection: false })
    return new Promise((resolve) => {
      socket.on('connect', () => {
        socket.disconnect()
        resolve({ connected: true })
      })
      socket.on('connect_error', (err: Error & { data?: Refusal['data'] }) => {
        socket.disconnect()
        resolve({ connected: false, err: { message: err.message, ...(err.data ? { data: err.data } : {}) } })
      })
    })
  }

  const sign = (claims: Record<string, unknown>, secret = TEST_SECRET) =>
    new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode(secret))

  it('a valid token and deviceId connect', async () => {
    expect(await attempt({ token: await tokenFor('alice'), deviceId: 'phone-1' })).toEqual({ connected: true })
    expect(await attempt({ token: await tokenFor('alice', 'pro'), deviceId: 'a.b:c_d-9' })).toEqual({
      connected: true,
    })
  })

  const unauthorized = { connected: false, err: { message: 'unauthorized', data: expect.objectContaining({ code: 'UNAUTHORIZED' }) } }

  it('no token is refused as unauthorized', async () => {
    expect(await attempt({ deviceId: 'phone' })).toEqual(unauthorized)
    expect(await attempt({ token: '', deviceId: 'phone' })).toEqual(unauthorized)
    expect(await attempt({ token: 42, deviceId: 'phone' })).toEqual(unauthorized)
  })

  it('a forged token is refused', async () => {
    const forged = await sign({ sub: 'alice' }, 'another-secret-another-secret-another-secret')
    expect(await attempt({ token: forged, deviceId: 'phone' })).toEqual(unauthorized)
    const tampered = (await tokenFor('alice')).replace(/\.[^.]+\./, `.${Buffer.from('{"sub":"bob"}').toString('base64url')}.`)
    expect(await attempt({ token: tampered, deviceId: 'phone' })).toEqual(unauthorized)
  })

  it('alg none and other algorithms are refused (the algorithm is pinned)', async () => {
    const none = new UnsecuredJWT({ sub: 'alice' }).encode()
    expect(await attempt({ token: none, deviceId: 'phone' })).toEqual(unauthorized)
    const hs512 = await new SignJWT({ sub: 'alice' })
      .setProtectedHeader({ alg: 'HS512' })
      .sign(new TextEncoder().encode(TEST_SECRET))
    expect(await attempt({ token: hs512, deviceId: 'phone' })).toEqual(unauthorized)
  })

  it('an expired token is refused and says so', async () => {
    const expired = await sign({ sub: 'alice', exp: Math.floor(Date.now() / 1000) - 10 })
    const result = await attempt({ token: expired, deviceId: 'phone' })
    expect(result).toEqual(unauthorized)
    expect(result.connected === false && result.err.data?.message).toMatch(/expired/)
  })

  it('bad claims are refused: missing or oversized sub, unknown plan', async () => {
    expect(await attempt({ token: await sign({ plan: 'pro' }), deviceId: 'phone' })).toEqual(unauthorized)
    expect(await attempt({ token: await sign({ sub: 'x'.repeat(129) }), deviceId: 'phone' })).toEqual(unauthorized)
    expect(await attempt({ token: await sign({ sub: 'alice', plan: 'enterprise' }), deviceId: 'phone' })).toEqual(
      unauthorized,
    )
  })

  it('a bad deviceId is refused as bad_request', async () => {
    const token = await tokenFor('alice')
    for (const deviceId of [undefined, '', 'has space', 'x'.repeat(129), 'slash/no', 7]) {
      expect(await attempt({ token, deviceId })).toEqual({
        connected: false,
        err: { message: 'bad_request', data: expect.objectContaining({ code: 'INVALID_PAYLOAD' }) },
      })
    }
  })
})
