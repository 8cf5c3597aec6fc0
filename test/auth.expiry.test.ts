/**
 * A token that expires while its socket stays connected (issue 4, item 5;
 * protocol §§1 and 2). From `exp` on, every event of the socket is
 * refused with `UNAUTHORIZED` (writes, and reads too) and the server
 * disconnects it; a socket that sends nothing is told (`sync:error`, event
 * `auth`) and disconnected at `exp` by a timer. Sockets with valid tokens are
 * untouched.
 */
import { decodeJwt } from 'jose'
import type { Socket } from 'socket.io-client'
import { afterEach, describe, expect, it, vi } from 'vitest'
import * as Y from 'yjs'
import { requestStatus } from './helpers/conflicts.js'
import { YjsDevice, snapshot, waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { JsonDevice, type Reply } from './helpers/json-device.js'
import { tokenFor } from './helpers/server.js'

const WAIT_MS = 10_000

interface ErrorEvent {
  code: string
  message: string
  event: string
  requestId?: string
}

/** What one socket sees from now on: `sync:error`s and its disconnect reason, in order. */
function watch(socket: Socket): { log: string[]; errors: ErrorEvent[]; reason: () => string | undefined } {
  const log: string[] = []
  const errors: ErrorEvent[] = []
  let reason: string | undefined
  socket.on('sync:error', (e: ErrorEvent) => {
    errors.push(e)
    log.push(`sync:error ${e.event}`)
  })
  socket.on('disconnect', (r: string) => {
    reason = r
    log.push('disconnect')
  })
  return { log, errors, reason: () => reason }
}

const expOf = (token: string): number => {
  const { exp } = decodeJwt(token)
  if (exp === undefined) throw new Error('token has no exp')
  return exp
}

/**
 * Runs `fn` with the (shared, in-process) wall clock moved just past the
 * token's `exp`, while the server's expiry timer, which runs on the monotonic
 * clock, has not fired yet: what a server sees when an event arrives after
 * `exp` before the timer (a wall clock that jumped, a busy event loop). The
 * jump stays well inside socket.io-client's ping window (45 s).
 */
async function pastExpiry<T>(token: string, fn: () => Promise<T>): Promise<T> {
  const realNow = Date.now.bind(Date)
  const offset = expOf(token) * 1000 + 1 - realNow()
  const spy = vi.spyOn(Date, 'now').mockImplementation(() => realNow() + offset)
  try {
    return await fn()
  } finally {
    spy.mockRestore()
  }
}

/** A Yjs update adding clip `id` (from a scratch document). */
function clipUpdate(id: string, content: string): Uint8Array {
  const doc = new Y.Doc()
  const clip = new Y.Map<unknown>()
  clip.set('content', content)
  clip.set('contentType', 'text')
  clips(doc).set(id, clip)
  const update = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return update
}

const clips = (doc: Y.Doc): Y.Map<unknown> => doc.getMap('clips')

const change = (
  deviceId: string,
  operation: 'create' | 'update' | 'delete',
  entityId: string,
  data: Record<string, unknown>,
  version: number,
) => ({
  id: `${deviceId}-${operation}-${entityId}`,
  deviceId,
  entityType: 'clip',
  entityId,
  operationType: operation,
  data,
  timestamp: Date.now(),
  version,
  requestId: `req-${operation}`,
})

describe('a token that expires while its socket stays connected', () => {
  const fixture = useServer()
  afterEach(() => vi.restoreAllMocks())

  /** The user's document and open conflicts, as a fresh device with a valid token sees them. */
  async function stored(userId: string): Promise<{ doc: unknown; entities: unknown; conflicts: string[] }> {
    const yjs = await fixture.device(userId, 'fresh-yjs')
    const json = await fixture.jsonDevice(userId, 'fresh-json')
    const result = {
      doc: snapshot(yjs.doc),
      entities: Object.fromEntries(json.liveEntities()),
      conflicts: (await requestStatus(json.socket, json.deviceId)).conflicts,
    }
    yjs.close()
    json.close()
    return result
  }

  it('a silent socket gets sync:error "token expired" (event auth) and is disconnected at exp; valid sockets are untouched', async () => {
    await fixture.start()
    const { url } = fixture.server
    const token = await tokenFor('alice', 'free', '2s')
    const short = fixture.track(await YjsDevice.connect(url, token, 'short'))
    const seen = watch(short.socket)
    const forever = await fixture.device('alice', 'no-exp')
    const hour = fixture.track(await YjsDevice.connect(url, await tokenFor('alice', 'free', '1h'), 'one-hour'))
    const others = [forever, hour].map((d) => watch(d.socket))

    // Before exp the short-lived token writes like any other.
    const before = (await short.send(clipUpdate('before-exp', 'written in time')))
    expect(before.ok).toBe(true)

    await waitFor(() => seen.reason() !== undefined, 'the server to disconnect the expired socket', WAIT_MS)
    // Not before exp (client and server share this process's clock).
    expect(Date.now()).toBeGreaterThanOrEqual(expOf(token) * 1000)
    expect(seen.errors).toEqual([{ code: 'UNAUTHORIZED', message: 'token expired', event: 'auth' }])
    expect(seen.log).toEqual(['sync:error auth', 'disconnect'])
    // A server-side disconnect: socket.io-client does not reconnect by itself with the old token.
    expect(seen.reason()).toBe('io server disconnect')

    // The sockets whose tokens are valid are still connected and still sync.
    expect(forever.socket.connected && hour.socket.connected).toBe(true)
    const after = (await forever.send(clipUpdate('after-exp', 'from a valid token')))
    expect(after.ok).toBe(true)
    await waitFor(() => clips(hour.doc).has('after-exp'), 'the valid socket to get the update', WAIT_MS)
    expect(others.map((o) => [o.errors, o.reason()])).toEqual([
      [[], undefined],
      [[], undefined],
    ])

    const { doc } = await stored('alice')
    expect(Object.keys((doc as { clips: object }).clips).sort()).toEqual(['after-exp', 'before-exp'])
  })

  it('a socket closed before exp: its timer does nothing to the device connecting again with a valid token', async () => {
    await fixture.start()
    const { url } = fixture.server
    const token = await tokenFor('bob', 'free', '2s')
    const early = await YjsDevice.connect(url, token, 'early')
    const seen = watch(early.socket)
    early.close()
    // The same device again with a valid token, past the first token's exp.
    const again = await fixture.device('bob', 'early')
    const againSeen = watch(again.socket)
    await waitFor(() => Date.now() >= expOf(token) * 1000 + 500, 'the first token to expire', WAIT_MS)
    const reply = (await again.send(clipUpdate('still-here', 'x')))
    expect(reply.ok).toBe(true)
    expect(again.socket.connected).toBe(true)
    expect(againSeen.errors).toEqual([])
    expect(seen.errors).toEqual([])
    expect(seen.reason()).toBe('io client disconnect')
  })

  interface Case {
    event: string
    /** Whether the expiring socket is a Yjs device (else a JSON device). */
    yjs: boolean
    payload: (deviceId: string, conflictId: string) => Record<string, unknown>
  }

  const WRITES: Case[] = [
    { event: 'sync:update', yjs: true, payload: () => ({ update: clipUpdate('late', 'after exp'), requestId: 'req-update' }) },
    {
      event: 'sync:entity_created',
      yjs: false,
      payload: (d) => change(d, 'create', 'late', { content: 'after exp', contentType: 'text' }, 0),
    },
    { event: 'sync:entity_updated', yjs: false, payload: (d) => change(d, 'update', 'c1', { title: 'after exp' }, 2) },
    { event: 'sync:entity_deleted', yjs: false, payload: (d) => change(d, 'delete', 'c1', {}, 2) },
    {
      event: 'sync:conflict',
      yjs: false,
      payload: (_d, conflictId) => ({ conflictId, winningVersion: 'client', requestId: 'req-conflict' }),
    },
  ]
  // Reads are refused too: an expired token authorizes nothing (README, "Connect.").
  const READS: Case[] = [
    {
      event: 'sync:request',
      yjs: true,
      payload: (d) => ({ deviceId: d, stateVector: Y.encodeStateVector(new Y.Doc()), requestId: 'req-sync' }),
    },
    { event: 'sync:status', yjs: false, payload: (d) => ({ deviceId: d, requestId: 'req-status' }) },
  ]

  it.each([...WRITES, ...READS])(
    'after exp, $event is refused with UNAUTHORIZED, nothing of it applied, and the socket is disconnected',
    async ({ event, yjs, payload }) => {
      await fixture.start()
      const { url } = fixture.server
      // A document with clip c1 (version 2) and an open conflict on its content.
      const a = await fixture.jsonDevice('carol', 'setup-a')
      const b = await fixture.jsonDevice('carol', 'setup-b')
      await a.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0', contentType: 'text' } })
      await a.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from a' }, version: 1 })
      const conflicting = await b.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from b' }, version: 1 })
      const [conflictId] = conflicting.conflicts as string[]
      expect(conflictId).toBeTypeOf('string')
      const before = await stored('carol')
      expect(before.conflicts).toEqual([conflictId])

      // Expires long after this test; the wall clock is moved past it instead (see pastExpiry).
      const token = await tokenFor('carol', 'free', '20s')
      const expiring = yjs
        ? fixture.track(await YjsDevice.connect(url, token, 'expiring'))
        : fixture.track(await JsonDevice.connect(url, token, 'expiring'))
      // The Yjs device's post-sync update must be answered before the clock moves.
      if (expiring instanceof YjsDevice) await expiring.flushed()
      const seen = watch(expiring.socket)
      const sent = payload('expiring', conflictId!)

      const reply = await pastExpiry(token, async () => {
        const ack = (await expiring.socket.timeout(WAIT_MS).emitWithAck(event, sent)) as Reply
        await waitFor(() => seen.reason() !== undefined, 'the server to disconnect the expired socket', WAIT_MS)
        return ack
      })

      expect(reply).toEqual({ ok: false, error: { code: 'UNAUTHORIZED', message: 'token expired' } })
      expect(seen.errors).toEqual([
        { code: 'UNAUTHORIZED', message: 'token expired', event, requestId: sent.requestId },
      ])
      expect(seen.log).toEqual([`sync:error ${event}`, 'disconnect'])
      expect(seen.reason()).toBe('io server disconnect')

      // Nothing of it applied: a fresh device sees the same document and the conflict still open.
      expect(await stored('carol')).toEqual(before)
      // The valid sockets of the same user are untouched.
      expect(a.socket.connected && b.socket.connected).toBe(true)
      await a.write('update', { entityType: 'clip', entityId: 'c1', data: { title: 'still syncing' } })
      // Control: the very same event from the same device with a valid token is accepted.
      const valid = await tokenFor('carol')
      const renewed = yjs
        ? fixture.track(await YjsDevice.connect(url, valid, 'expiring'))
        : fixture.track(await JsonDevice.connect(url, valid, 'expiring'))
      if (renewed instanceof YjsDevice) await renewed.flushed()
      expect(await renewed.socket.timeout(WAIT_MS).emitWithAck(event, sent)).toMatchObject({ ok: true })
    },
  )
})
