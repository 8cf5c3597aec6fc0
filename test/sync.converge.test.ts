import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { snapshot, waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'

describe('Yjs devices of one user converge', () => {
  const t = useServer()
  const device = (userId: string, deviceId: string) => t.device(userId, deviceId)

  it('two devices: an edit on one reaches the other, and the sender is not echoed', async () => {
    await t.start()
    const a = await device('alice', 'phone')
    const b = await device('alice', 'laptop')
    a.addClip('c1', 'hello')
    await a.flushed()
    await waitFor(() => b.clips().has('c1'), 'clip on laptop')
    expect(b.clips().get('c1')?.get('content')).toBe('hello')
    expect(b.received).toHaveLength(1)
    expect(b.received[0]?.deviceId).toBe('phone')
    expect(b.received[0]?.serverTimestamp).toBeGreaterThan(0)
    // Give an echo every chance to arrive before checking that none did.
    b.addClip('c2', 'back')
    await b.flushed()
    await waitFor(() => a.clips().has('c2'), 'clip on phone')
    expect(a.received.map((r) => r.deviceId)).toEqual(['laptop'])
    expect(b.received.map((r) => r.deviceId)).toEqual(['phone'])
  })

  it('three devices editing at once end with identical documents', async () => {
    await t.start()
    const ds = [await device('alice', 'd1'), await device('alice', 'd2'), await device('alice', 'd3')]
    ds.forEach((d, i) => {
      for (let n = 0; n < 20; n++) d.addClip(`d${i}-${n}`, `clip ${n} from ${i}`)
    })
    await Promise.all(ds.map((d) => d.flushed()))
    await waitFor(() => ds.every((d) => d.clips().size === 60), 'all 60 clips everywhere')
    const [first, ...rest] = ds.map((d) => snapshot(d.doc))
    for (const s of rest) expect(s).toEqual(first)
  })

  it('both devices edit offline, reconnect, and hold every edit', async () => {
    await t.start()
    const a = await device('alice', 'phone')
    const b = await device('alice', 'laptop')
    a.addClip('shared', 'v0')
    await a.flushed()
    await waitFor(() => b.clips().has('shared'), 'shared clip on laptop')

    a.goOffline()
    b.goOffline()
    a.addClip('from-phone', 'offline on phone')
    b.addClip('from-laptop', 'offline on laptop')
    a.clips().get('shared')?.set('title', 'title from phone')
    b.clips().get('shared')?.set('pinned', true)

    await a.reconnect()
    await a.flushed()
    await b.reconnect()
    await b.flushed()
    await waitFor(() => a.clips().has('from-laptop'), 'laptop edits on phone')
    expect(snapshot(a.doc)).toEqual(snapshot(b.doc))
    const shared = a.clips().get('shared')
    expect(shared?.get('title')).toBe('title from phone')
    expect(shared?.get('pinned')).toBe(true)
    expect([...a.clips().keys()].sort()).toEqual(['from-laptop', 'from-phone', 'shared'])
  })

  it('a second user never sees the first user\'s data or updates', async () => {
    await t.start()
    const alice = await device('alice', 'phone')
    const mallory = await device('mallory', 'phone')
    alice.addClip('secret', 'alice only')
    await alice.flushed()
    const alice2 = await device('alice', 'laptop')
    expect(alice2.clips().get('secret')?.get('content')).toBe('alice only')
    // A fresh sync of the other user holds nothing of alice's, and nothing was relayed to it.
    const mallory2 = await device('mallory', 'laptop')
    expect(mallory2.clips().size).toBe(0)
    expect(mallory.received).toHaveLength(0)
    expect(mallory.clips().size).toBe(0)
    expect(Y.encodeStateVector(mallory.doc)).toEqual(Y.encodeStateVector(new Y.Doc()))
  })
})
