/**
 * protocol §1 names Socket.IO v4 with its defaults, so a client may
 * start on HTTP long-polling (and upgrade to WebSocket, or not). Every
 * transport gets its acks and relays, bursts included (the server holds a
 * turn's writes to a connection and sends them together), with Socket.IO's
 * default parser and with binary packets as single messages.
 */
import { describe, expect, it } from 'vitest'
import { useServer } from './helpers/fixture.js'
import { waitFor } from './helpers/device.js'

describe('devices on every Socket.IO transport', () => {
  const t = useServer()

  it('long-polling, polling upgraded to WebSocket and WebSocket devices each write a burst and get every clip', async () => {
    await t.start()
    const devices = [
      await t.device('alice', 'polling', { transports: ['polling'] }),
      await t.device('alice', 'upgraded', { transports: ['polling', 'websocket'] }),
      await t.device('alice', 'websocket'),
      // Binary packets as single messages (the SDK's wire) over each transport too.
      await t.device('alice', 'polling-single', { transports: ['polling'], singleFrame: true }),
      await t.device('alice', 'upgraded-single', { transports: ['polling', 'websocket'], singleFrame: true }),
      await t.device('alice', 'websocket-single', { singleFrame: true }),
    ]
    const ids = devices.flatMap((d) => Array.from({ length: 20 }, (_, i) => `${d.deviceId}-${i}`))
    for (const d of devices) for (let i = 0; i < 20; i++) d.addClip(`${d.deviceId}-${i}`, `clip ${i}`)
    await Promise.all(devices.map((d) => d.flushed()))
    await waitFor(() => devices.every((d) => ids.every((id) => d.clips().has(id))), 'every clip on every device')
    expect(devices.map((d) => d.errors)).toEqual(devices.map(() => []))
  })
})
