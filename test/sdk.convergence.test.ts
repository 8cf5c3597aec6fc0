/**
 * Three SDK devices of one user make seeded random edits through the entity
 * API (creates, field writes, conflicting content writes, list and text
 * edits, deletes and revivals) while going offline and online at random.
 * Once all are back: every device holds the same document as the server,
 * and every entity any device created is on the server.
 *
 * Replay: SDK_SEED=<seed> SDK_STEPS=<n> npx vitest run test/sdk.convergence.test.ts
 */
import isEqual from 'lodash/isEqual.js'
import { describe, expect, it } from 'vitest'
import type { SyncClient } from '@superclip/sync-client'
import { snapshot, waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { allSynced, useClients } from './helpers/sdk.js'
import { tokenFor } from './helpers/server.js'
import { prng } from './helpers/conflicts.js'

const SEED = Number(process.env.SDK_SEED ?? Math.floor(Math.random() * 2 ** 31))
const STEPS = Number(process.env.SDK_STEPS ?? 1000)

describe('SDK convergence', () => {
  const t = useServer()
  const c = useClients()

  it(`converges after random edits and disconnects (seed ${SEED}, ${STEPS} steps)`, async () => {
    console.log(`SDK_SEED=${SEED} SDK_STEPS=${STEPS}`)
    await t.start()
    const token = await tokenFor('alice', 'pro')
    const random = prng(SEED)
    const pick = <T>(items: readonly T[]): T | undefined => items[Math.floor(random() * items.length)]
    const devices = ['a', 'b', 'c'].map((deviceId) => c.client({ url: t.server.url, token, deviceId, backoff: { initialDelayMs: 50, maxDelayMs: 500 } }))
    const offline = new Set<SyncClient>()
    const created = new Set<string>()
    await allSynced(devices)

    for (let step = 0; step < STEPS; step++) {
      const device = pick(devices)!
      const clips = device.clips.list()
      const clip = pick(clips)
      const r = random()
      if (r < 0.1) {
        if (offline.delete(device)) device.connect()
        else {
          offline.add(device)
          device.disconnect()
        }
      } else if (r < 0.35 || !clip) {
        created.add(device.clips.create({ content: `c${step}`, contentType: 'text', tagIds: [] }))
      } else if (r < 0.5) {
        device.clips.update(clip.id, { title: `t${step}`, pinned: random() < 0.5 })
      } else if (r < 0.65) {
        device.clips.update(clip.id, { content: `content ${step} by ${device.deviceId}` })
      } else if (r < 0.75) {
        clip.tagIds?.push([`tag${step}`])
      } else if (r < 0.8) {
        device.clips.delete(clip.id)
      } else if (r < 0.85) {
        const deleted = device.clips.list({ includeDeleted: true }).filter((x) => x._deleted)
        const revived = pick(deleted)
        if (revived) device.clips.create({ content: `revived ${step}` }, { id: revived.id })
      } else {
        // Ids chosen by the app must be new everywhere: two devices creating one id concurrently would
        // each replace the other's entity, which the server refuses. One template per device, edited by all.
        const mine = `template-${device.deviceId}`
        const template = pick(device.templates.list()) ?? (device.templates.create({ name: mine, body: '' }, { id: mine }), device.templates.get(mine)!)
        const body = template.body!
        body.insert(Math.floor(random() * (body.length + 1)), `${device.deviceId}${step} `)
      }
      if (random() < 0.3) await new Promise((resolve) => setTimeout(resolve, random() * 10))
    }

    for (const device of offline) device.connect()
    await allSynced(devices, 60_000)
    const server = c.client({ url: t.server.url, token, deviceId: 'check' })
    await allSynced([server])
    await waitFor(() => devices.every((d) => isEqual(snapshot(d.doc), snapshot(server.doc))), 'every device to hold the server’s document', 30_000)
    const onServer = new Set(server.clips.list({ includeDeleted: true }).map((x) => x.id))
    expect([...created].filter((id) => !onServer.has(id))).toEqual([])
    expect(created.size).toBeGreaterThan(STEPS / 10)
  })
})
