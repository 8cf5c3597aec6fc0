import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { LevelDocumentRepository } from '../src/repositories/level.repository.js'
import { openStore } from '../src/repositories/level-store.js'
import { useServer } from './helpers/fixture.js'
import { tempDir } from './helpers/server.js'

describe('reconnecting devices', () => {
  const t = useServer()

  it('a reconnect that brings nothing new stores nothing and does not move the clock', async () => {
    const server = await t.start()
    const a = await t.device('alice', 'phone')
    for (let i = 0; i < 5; i++) a.addClip(`c${i}`, `clip ${i}`)
    await a.flushed()
    // A field overwrite leaves a deletion in the document: every later reply to the server's state
    // vector carries the whole delete set.
    a.clips().get('c1')?.set('title', 'one')
    a.clips().get('c1')?.set('title', 'two')
    await a.flushed()
    const doc = server.services.registry.peek('alice')
    const before = { log: doc?.logCount, clock: doc?.clock }

    for (let i = 0; i < 3; i++) {
      a.goOffline()
      await a.reconnect()
      await a.flushed()
    }
    expect({ log: doc?.logCount, clock: doc?.clock }).toEqual(before)
    // An update that does bring something is still stored.
    a.addClip('new', 'after reconnects')
    await a.flushed()
    expect(doc?.logCount).toBe((before.log ?? 0) + 1)
  })
})

describe('per-device sync state', () => {
  const t = useServer()

  it('a completed Yjs sync is stored with its time and the state vector the device was brought up to', async () => {
    const dir = await tempDir()
    await t.start(dir)
    const a = await t.device('alice', 'phone')
    for (let i = 0; i < 3; i++) a.addClip(`c${i}`, `clip ${i}`)
    await a.flushed()
    const b = await t.device('alice', 'laptop')
    const response = b.responses.at(-1)
    await t.server.stop()

    const store = await openStore(dir)
    try {
      const state = await new LevelDocumentRepository(store, { syncWrites: false }).readDevice('alice', 'laptop')
      expect(state).toEqual({
        deviceId: 'laptop',
        mode: 'yjs',
        lastSyncTimestamp: response?.serverTimestamp,
        stateVector: Buffer.from(response?.stateVector ?? []).toString('base64'),
        lastSeenAt: expect.any(Number),
      })
      expect(Buffer.from(state?.stateVector ?? '', 'base64')).toEqual(Buffer.from(Y.encodeStateVector(a.doc)))
    } finally {
      await store.close()
    }
  })
})
