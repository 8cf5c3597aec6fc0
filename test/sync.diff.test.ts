import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'

describe('state-vector sync sends exactly what a device lacks', () => {
  const t = useServer()
  const device = (deviceId: string) => t.device('alice', deviceId)

  it('sync:start, sync:response and sync:complete arrive in order, with the server state vector', async () => {
    await t.start()
    const a = await device('phone')
    a.addClip('c1', 'x')
    await a.flushed()
    const fresh = new Y.Doc()
    const b = await device('laptop')
    const order: string[] = []
    b.socket.onAny((event: string) => order.push(event))
    const reply = await b.socket.emitWithAck('sync:request', {
      deviceId: 'laptop',
      stateVector: Y.encodeStateVector(fresh),
      requestId: 'r1',
    })
    expect(reply).toMatchObject({ ok: true })
    expect(order.slice(0, 3)).toEqual(['sync:start', 'sync:response', 'sync:complete'])
    const last = b.responses.at(-1)
    expect(last?.mode).toBe('yjs')
    expect(Buffer.from(last?.stateVector ?? [])).toEqual(Buffer.from(Y.encodeStateVector(a.doc)))
    // A fresh doc's diff is the whole document.
    Y.applyUpdate(fresh, last?.update ?? new Uint8Array())
    expect(fresh.getMap('clips').toJSON()).toEqual(a.clips().toJSON())
  })

  it('an up-to-date device re-syncs with a few bytes; one small edit to a large document is a few hundred', async () => {
    await t.start()
    const a = await device('phone')
    a.doc.transact(() => {
      for (let i = 0; i < 2000; i++) {
        const clip = new Y.Map<unknown>()
        clip.set('content', `clip number ${i} `.repeat(4))
        clip.set('createdAt', 1_700_000_000_000 + i)
        a.clips().set(`clip-${i}`, clip)
      }
    })
    await a.flushed()
    const b = await device('laptop')
    expect(b.clips().size).toBe(2000)
    const full = b.responses.at(-1)?.update.byteLength ?? 0
    expect(full).toBeGreaterThan(100_000)

    const resync = b.nextSync()
    b.requestSync()
    await resync
    expect(b.responses.at(-1)?.update.byteLength).toBeLessThanOrEqual(4)

    b.goOffline()
    a.clips().get('clip-7')?.set('title', 'renamed')
    await a.flushed()
    await b.reconnect()
    expect(b.clips().get('clip-7')?.get('title')).toBe('renamed')
    const small = b.responses.at(-1)?.update.byteLength ?? Infinity
    expect(small).toBeGreaterThan(4)
    expect(small).toBeLessThan(300)
  })

  it('what a device sends after sync:response is only what the server lacks', async () => {
    await t.start()
    const a = await device('phone')
    a.addClip('c1', 'one')
    await a.flushed()
    const b = await device('laptop')
    await waitFor(() => b.clips().has('c1'), 'c1 on laptop')
    b.goOffline()
    b.addClip('c2', 'two')
    const sent: number[] = []
    const send = b.send.bind(b)
    b.send = (update) => {
      sent.push(update.byteLength)
      return send(update)
    }
    await b.reconnect()
    await b.flushed()
    await waitFor(() => a.clips().has('c2'), 'c2 on phone')
    const c2Only = Y.encodeStateAsUpdate(b.doc, Y.encodeStateVector(a.doc)).byteLength
    expect(c2Only).toBe(2) // the phone now has everything the laptop has
    expect(Math.max(...sent)).toBeLessThan(120)
  })
})
