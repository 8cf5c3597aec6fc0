import { io } from 'socket.io-client'
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { snapshot, waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { NO_RATE_LIMITS, tempDir, tokenFor } from './helpers/server.js'

describe('documents survive restarts and are loaded once', () => {
  const t = useServer()
  const device = (userId: string, deviceId: string) => t.device(userId, deviceId)

  it('restart: stop the server, start it on the same data dir, everything is back', async () => {
    const dir = await tempDir()
    await t.start(dir)
    const a = await device('alice', 'phone')
    for (let i = 0; i < 50; i++) a.addClip(`c${i}`, `clip ${i}`)
    a.doc.getMap('settings').set('theme', new Y.Map([['value', 'dark']]))
    await a.flushed()
    const before = snapshot(a.doc)
    a.close()
    await t.start(dir)
    const b = await device('alice', 'new-laptop')
    expect(snapshot(b.doc)).toEqual(before)
    expect(b.clips().size).toBe(50)
  })

  it('two sockets racing on the first load get one document, and nothing sent right after connect is lost', async () => {
    const dir = await tempDir()
    // A log of many small updates makes the load take long enough for the race to be real.
    // 3,000 updates from one device at full speed are past the free plan's rate limits: lifted.
    const noCompaction = { compactMaxUpdates: 1_000_000, compactMaxBytes: 1 << 30, ...NO_RATE_LIMITS }
    await t.start(dir, noCompaction)
    const seed = await device('alice', 'seed')
    for (let i = 0; i < 3000; i++) seed.addClip(`seed-${i}`, `s${i}`)
    await seed.flushed()
    seed.close()
    const server = await t.start(dir, noCompaction)
    const token = await tokenFor('alice')
    const raw = ['one', 'two'].map((deviceId) => {
      const socket = io(server.url, { auth: { token, deviceId }, transports: ['websocket'] })
      const doc = new Y.Doc()
      doc.getMap('clips').set(`early-${deviceId}`, new Y.Map([['content', deviceId]]))
      // Emitted before the socket even connects: socket.io-client buffers it, the server gets it first thing.
      const ack = socket.emitWithAck('sync:update', { update: Y.encodeStateAsUpdate(doc) }) as Promise<{ ok: boolean }>
      return { socket, ack }
    })
    const acks = await Promise.all(raw.map((r) => r.ack))
    expect(acks).toEqual([expect.objectContaining({ ok: true }), expect.objectContaining({ ok: true })])
    expect(server.services.registry.loadedCount).toBe(1)
    raw.forEach((r) => r.socket.disconnect())

    const check = await device('alice', 'checker')
    await waitFor(() => check.clips().size === 3002, 'all clips')
    expect(check.clips().has('early-one')).toBe(true)
    expect(check.clips().has('early-two')).toBe(true)
  })

  it('an idle document is unloaded and comes back whole', async () => {
    const server = await t.start(undefined, { docIdleMs: 50 })
    const a = await device('alice', 'phone')
    a.addClip('kept', 'still here')
    await a.flushed()
    a.close()
    await waitFor(() => server.services.registry.loadedCount === 0, 'document unloaded')
    const b = await device('alice', 'laptop')
    expect(b.clips().get('kept')?.get('content')).toBe('still here')
    expect(server.services.registry.loadedCount).toBe(1)
  })
})
