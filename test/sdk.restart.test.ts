/**
 * A server restart does not bring every device back at once: the server's
 * shutdown notice gives each socket its own `retryAfterMs` in a 2–4 s
 * window, and the SDK waits for it, so the reconnections are spread over
 * the hinted window, and every device ends synced with its edits.
 */
import { describe, expect, it } from 'vitest'
import { waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { allSynced, useClients } from './helpers/sdk.js'
import { tempDir, tokenFor } from './helpers/server.js'

const DEVICES = 20

describe('SDK across a server restart', () => {
  const t = useServer()
  const c = useClients()

  it('reconnects spread over the hinted window, not at once', async () => {
    const dir = await tempDir()
    const first = await t.start(dir)
    const port = Number(new URL(first.url).port)
    const devices = await Promise.all(
      Array.from({ length: DEVICES }, async (_, i) =>
        c.client({ url: first.url, token: await tokenFor(`user${i % 10}`), deviceId: `device${i}` }),
      ),
    )
    for (const device of devices) device.clips.create({ content: `before ${device.deviceId}` })
    await allSynced(devices)

    const stopping = Date.now()
    const offline = Promise.all(devices.map((d) => new Promise<void>((resolve) => d.on('status', (s) => s === 'offline' && resolve()))))
    await t.server.stop()
    await offline
    // Edits made while the server is away go with the reconnect.
    for (const device of devices) device.clips.create({ content: `during ${device.deviceId}` })
    const second = await t.start(dir, { port })
    const connectedAt: number[] = []
    second.io.on('connection', () => connectedAt.push(Date.now() - stopping))
    await allSynced(devices, 30_000)

    expect(connectedAt).toHaveLength(DEVICES)
    connectedAt.sort((a, b) => a - b)
    // The shutdown notice's hints lie in [2000, 4000) ms; the SDK waits at least its hint.
    expect(connectedAt[0]).toBeGreaterThanOrEqual(2000)
    // 20 hints drawn from [2000, 4000): their spread is about 1.8 s; all inside the window (plus the SDK's 250 ms and slack).
    expect(connectedAt.at(-1)! - connectedAt[0]!, `reconnections at ${connectedAt.join(', ')} ms`).toBeGreaterThan(1000)
    expect(connectedAt.at(-1)).toBeLessThan(4000 + 250 + 1000)
    // Two devices per user, two clips each.
    await waitFor(() => devices.every((d) => d.clips.list().length === 4), 'every clip on both devices of its user')
  })
})
