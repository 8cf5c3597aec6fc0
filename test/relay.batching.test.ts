/**
 * Live relays are gathered per turn (protocol §4; issue 5): the
 * updates one device made that a group commit settles together reach each
 * other device as one `sync:update` of that device (their merge), never the
 * sender itself; every update is still acknowledged on its own. A single
 * recipient gets them one by one.
 */
import { describe, expect, it } from 'vitest'
import { holdNextWrite } from './helpers/server.js'
import { useServer } from './helpers/fixture.js'
import { waitFor } from './helpers/device.js'
import { clipsUpdate, type Reply } from './helpers/raw-client.js'

describe('relays of one turn are merged per device', () => {
  const t = useServer()

  it('20 updates sent at once: all acknowledged, relayed as fewer messages holding all of them, not to the sender', async () => {
    await t.start()
    const laptop = await t.device('alice', 'laptop')
    // Two recipients: with one, relays are not merged (next test).
    const tablet = await t.device('alice', 'tablet')
    const relays: { deviceId: string }[] = []
    laptop.socket.on('sync:update', (m: { deviceId: string }) => relays.push(m))
    const phone = await t.device('alice', 'phone')

    const ids = Array.from({ length: 20 }, (_, i) => `clip-${i}`)
    // Emitted in one synchronous loop: they reach the server in one read and are committed together.
    const replies = (await Promise.all(ids.map((id) => phone.socket.emitWithAck('sync:update', { update: clipsUpdate([id]) })))) as Reply[]
    expect(replies.every((r) => r.ok)).toBe(true)
    await waitFor(() => ids.every((id) => laptop.clips().has(id) && tablet.clips().has(id)), 'every clip on the laptop and the tablet')
    expect(relays.every((r) => r.deviceId === 'phone')).toBe(true)
    expect(relays.length).toBeGreaterThan(0)
    expect(relays.length).toBeLessThan(ids.length)
    expect(phone.received).toEqual([])
  })

  it('with a single recipient, each update is relayed on its own, in order', async () => {
    await t.start()
    const laptop = await t.device('alice', 'laptop')
    const relays: { deviceId: string; serverTimestamp: number }[] = []
    laptop.socket.on('sync:update', (m: { deviceId: string; serverTimestamp: number }) => relays.push(m))
    const phone = await t.device('alice', 'phone')

    const ids = Array.from({ length: 20 }, (_, i) => `clip-${i}`)
    const replies = (await Promise.all(ids.map((id) => phone.socket.emitWithAck('sync:update', { update: clipsUpdate([id]) })))) as Reply[]
    expect(replies.every((r) => r.ok)).toBe(true)
    await waitFor(() => ids.every((id) => laptop.clips().has(id)), 'every clip on the laptop')
    expect(relays.map((r) => r.serverTimestamp)).toEqual(replies.map((r) => (r.ok ? r.serverTimestamp : undefined)))
    expect(relays.every((r) => r.deviceId === 'phone')).toBe(true)
  })

  it('an update committed while the server shuts down reaches the other devices before their connections close', async () => {
    // Relays after the commit, so the relay is sent in the shutdown (the default sends it before the write).
    await t.start(undefined, { relayBeforeDurable: false })
    const phone = await t.device('alice', 'phone')
    const laptop = await t.device('alice', 'laptop')
    // Hold the next write: the update is applied, and the shutdown waits for it to be stored.
    const release = holdNextWrite(t.server)
    phone.addClip('last', 'written as the server stops')
    await waitFor(() => t.server.services.registry.peek('alice')?.doc.getMap('clips').has('last') === true, 'the update applied')
    const stopped = t.server.stop()
    release()
    await stopped
    await phone.flushed()
    await waitFor(() => laptop.clips().has('last'), 'the relay on the laptop', 5000)
  })
})
