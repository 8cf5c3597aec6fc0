/**
 * Connection quality: SDK devices reach the server through a TCP proxy on
 * loopback that adds latency, cuts every connection at random and stalls
 * traffic at random (seeded), while they keep editing. Once the network
 * calms down: every device converges on the server's document, and every
 * edit a device saw acknowledged (its pending count back to 0) is there.
 *
 * Replay: NETWORK_SEED=<seed> npx vitest run test/sdk.network.test.ts
 */
import isEqual from 'lodash/isEqual.js'
import { afterEach, describe, expect, it } from 'vitest'
import type { SyncClient } from '@superclip/sync-client'
import { snapshot, waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { allSynced, useClients } from './helpers/sdk.js'
import { tokenFor } from './helpers/server.js'
import { prng } from './helpers/conflicts.js'
import { TcpProxy } from './helpers/tcp-proxy.js'

const SEED = Number(process.env.NETWORK_SEED ?? Math.floor(Math.random() * 2 ** 31))
const RUN_MS = 6000

describe('SDK over a bad network', () => {
  const t = useServer()
  const c = useClients()
  let proxy: TcpProxy | undefined
  afterEach(async () => {
    await proxy?.close()
    proxy = undefined
  })

  it(`converges and loses nothing acknowledged through latency, cuts and stalls (seed ${SEED})`, async () => {
    console.log(`NETWORK_SEED=${SEED}`)
    await t.start()
    proxy = await TcpProxy.start({ targetPort: Number(new URL(t.server.url).port), latencyMs: 20 })
    const token = await tokenFor('alice', 'pro')
    const random = prng(SEED)
    const devices = ['a', 'b', 'c'].map((deviceId) =>
      c.client({ url: proxy!.url, token, deviceId, backoff: { initialDelayMs: 100, maxDelayMs: 1000 }, socketOptions: { timeout: 3000 } }),
    )
    await allSynced(devices)

    // An edit counts as acknowledged once its device's pending count returns to 0 after it.
    const acknowledged = new Set<string>()
    const unacknowledged = new Map<SyncClient, string[]>(devices.map((d) => [d, []]))
    for (const device of devices) {
      device.on('pending', (n) => {
        if (n !== 0) return
        for (const id of unacknowledged.get(device)!.splice(0)) acknowledged.add(id)
      })
    }

    proxy.chaos({ seed: SEED, everyMs: 500, maxStallMs: 1500 })
    const until = Date.now() + RUN_MS
    let step = 0
    while (Date.now() < until) {
      const device = devices[Math.floor(random() * devices.length)]!
      const clip = device.clips.list()[Math.floor(random() * 10)]
      if (clip && random() < 0.4) device.clips.update(clip.id, { title: `t${step}`, content: `c${step} ${device.deviceId}` })
      else unacknowledged.get(device)!.push(device.clips.create({ content: `clip ${step} by ${device.deviceId}` }))
      step += 1
      await new Promise((resolve) => setTimeout(resolve, random() * 30))
    }
    proxy.calm()
    const ackedDuringChaos = acknowledged.size

    await allSynced(devices, 60_000)
    const server = c.client({ url: t.server.url, token, deviceId: 'direct' })
    await allSynced([server])
    await waitFor(() => devices.every((d) => isEqual(snapshot(d.doc), snapshot(server.doc))), 'every device to hold the server’s document', 30_000)
    const onServer = new Set(server.clips.list().map((x) => x.id))
    expect([...acknowledged].filter((id) => !onServer.has(id))).toEqual([])
    expect(proxy.cuts.length, 'cuts').toBeGreaterThan(0)
    expect(proxy.stalls.length, 'stalls').toBeGreaterThan(0)
    expect(ackedDuringChaos, 'edits acknowledged during the chaos').toBeGreaterThan(0)
    console.log(`${step} edits, ${ackedDuringChaos} acknowledged during the chaos, ${proxy.cuts.length} cuts, ${proxy.stalls.length} stalls`)
  })
})
