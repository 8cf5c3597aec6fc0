import { describe, expect, it } from 'vitest'
import { holdNextWrite } from './helpers/server.js'
import { waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'

describe('sync:pause and sync:resume (protocol §7)', () => {
  const t = useServer()
  const device = (deviceId: string) => t.device('alice', deviceId)

  it('a paused socket gets no live updates; resume sends what it missed, then sync:complete, then live again', async () => {
    await t.start()
    const a = await device('phone')
    const b = await device('laptop')
    expect(await b.socket.emitWithAck('sync:pause', {})).toEqual({ ok: true })

    a.addClip('while-paused-1', 'one')
    a.addClip('while-paused-2', 'two')
    await a.flushed()
    // The acks above mean the relays, had there been any, were already sent; a ping round-trip lets them land.
    // A pause while paused is fine, and so is a null payload (what some clients send for "nothing").
    expect(await b.socket.emitWithAck('sync:pause', null)).toEqual({ ok: true })
    expect(b.received).toHaveLength(0)
    expect(b.clips().size).toBe(0)

    const order: string[] = []
    b.socket.onAny((event: string) => order.push(event))
    const resumed = b.nextSync()
    expect(await b.socket.emitWithAck('sync:resume', { requestId: 'r' })).toMatchObject({ ok: true })
    await resumed
    expect(order).toEqual(['sync:response', 'sync:complete'])
    expect([...b.clips().keys()].sort()).toEqual(['while-paused-1', 'while-paused-2'])

    a.addClip('after-resume', 'live')
    await a.flushed()
    await waitFor(() => b.clips().has('after-resume'), 'live update after resume')
    expect(b.received.map((r) => r.deviceId)).toEqual(['phone'])
  })

  it('pause and resume are idempotent and a device can still write while paused', async () => {
    await t.start()
    const a = await device('phone')
    const b = await device('laptop')
    await b.socket.emitWithAck('sync:pause')
    await b.socket.emitWithAck('sync:pause')
    b.addClip('from-paused', 'still sent')
    await b.flushed()
    await waitFor(() => a.clips().has('from-paused'), 'write from a paused device')
    await b.socket.emitWithAck('sync:resume')
    expect(await b.socket.emitWithAck('sync:resume')).toEqual({ ok: true })
  })

  it('a socket that pauses while a change is being written still gets that change on resume', async () => {
    // Relays after the commit: otherwise b would hold the change before it pauses.
    await t.start(undefined, { relayBeforeDurable: false })
    const a = await device('phone')
    const b = await device('laptop')
    // Hold the next write until b has paused: the change is applied in memory, not yet stored or relayed.
    const release = holdNextWrite(t.server)
    a.addClip('in-flight', 'written while b pauses')
    await waitFor(() => t.server.services.registry.peek('alice')?.doc.getMap('clips').has('in-flight') === true, 'the change applied')
    expect(await b.socket.emitWithAck('sync:pause', {})).toEqual({ ok: true })
    release()
    await a.flushed()
    const resumed = b.nextSync()
    expect(await b.socket.emitWithAck('sync:resume', {})).toMatchObject({ ok: true })
    await resumed
    expect(b.clips().has('in-flight')).toBe(true)
  })
})
