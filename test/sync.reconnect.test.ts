import { describe, expect, it } from 'vitest'
import { useServer } from './helpers/fixture.js'

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
