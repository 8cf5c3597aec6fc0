/**
 * Plan limits (issue 4, item 3; protocol §§1, 2, 7): live entities per
 * type, document bytes, update bytes, devices and connections per user, per
 * plan, over the real server with small limits passed through its config.
 */
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { PLANS, type PlanLimits, type PlanTable } from '../src/models/plans.js'
import { useServer } from './helpers/fixture.js'
import { conflictLog, requestStatus, resolveConflict } from './helpers/conflicts.js'
import { waitFor } from './helpers/device.js'
import { JsonDevice } from './helpers/json-device.js'
import { attempt, clipsUpdate, connect, openedSockets, sendUpdate, type Client, type Reply } from './helpers/raw-client.js'
import { tokenFor } from './helpers/server.js'

const plans = (free: Partial<PlanLimits>, pro: Partial<PlanLimits> = {}): PlanTable => ({
  free: { ...PLANS.free, ...free },
  pro: { ...PLANS.pro, ...pro },
})

const QUOTA_REFUSAL = { message: 'quota_exceeded', data: { code: 'QUOTA_EXCEEDED', message: expect.any(String) } }

async function sendChange(client: Client, operation: 'create' | 'update' | 'delete', entityType: string, entityId: string, data = {}): Promise<Reply> {
  const event = { create: 'sync:entity_created', update: 'sync:entity_updated', delete: 'sync:entity_deleted' }[operation]
  return (await client.socket.emitWithAck(event, {
    id: `${entityId}-${operation}-${Math.random()}`,
    entityType,
    entityId,
    operationType: operation,
    data,
    version: 0,
  })) as Reply
}

const refused = (code: string) => ({ ok: false, error: { code, message: expect.any(String) } })

/** Expects the client's `sync:error`s since `before` to be one of `code` for `event`. */
async function expectSyncError(client: Client, before: number, code: string, event: string): Promise<void> {
  // A round trip: everything the server emitted to this socket before has arrived once its status has.
  await requestStatus(client.socket, client.deviceId)
  expect(client.errors.slice(before)).toEqual([expect.objectContaining({ code, event })])
}

describe('plan limits (issue 4, item 3)', () => {
  const t = useServer()
  const opened = openedSockets()

  async function counts(userId: string, plan: 'free' | 'pro' = 'free'): Promise<Record<string, number>> {
    const d = t.track(await JsonDevice.connectUnsynced(t.server.url, await tokenFor(userId, plan), `check-${Math.random()}`))
    const status = await d.status()
    d.close()
    return status.entityCounts
  }

  it('the table gives the defaults: a free user may keep 10,000 clips; pro allows more than free', () => {
    expect(PLANS.free.entitiesPerType).toBeGreaterThanOrEqual(10_000)
    for (const k of Object.keys(PLANS.free) as (keyof PlanLimits)[]) {
      const [pro, free] = [PLANS.pro[k], PLANS.free[k]]
      if (typeof pro === 'number' && typeof free === 'number') expect(pro).toBeGreaterThanOrEqual(free)
      else if (typeof pro === 'object' && typeof free === 'object') {
        expect(pro.perSecond).toBeGreaterThanOrEqual(free.perSecond)
        expect(pro.burst).toBeGreaterThanOrEqual(free.burst)
      } else throw new Error(`limit ${k} has different shapes in the two plans`)
    }
    // One largest update always fits in every byte bucket (else it could never pass).
    for (const limits of Object.values(PLANS)) {
      expect(limits.socketBytes.burst).toBeGreaterThanOrEqual(limits.updateBytes)
      expect(limits.userBytes.burst).toBeGreaterThanOrEqual(limits.updateBytes)
    }
  })

  it('a device over the devices-per-user limit is refused at connect; other sockets of a connected device are not', async () => {
    const { url } = await t.start(undefined, { plans: plans({ devicesPerUser: 2, connectionsPerUser: 10 }, { devicesPerUser: 3 }) })
    const free = await tokenFor('alice')
    expect(await attempt(url, free, 'phone', opened)).toBe('connected')
    expect(await attempt(url, free, 'laptop', opened)).toBe('connected')
    expect(await attempt(url, free, 'tablet', opened)).toEqual(QUOTA_REFUSAL)
    // A second socket of a device already connected is no new device.
    expect(await attempt(url, free, 'phone', opened)).toBe('connected')
    // Another user, and a pro user with a higher limit, are unaffected.
    expect(await attempt(url, await tokenFor('bob'), 'tablet', opened)).toBe('connected')
    const pro = await tokenFor('carol', 'pro')
    for (const d of ['a', 'b', 'c']) expect(await attempt(url, pro, d, opened)).toBe('connected')
    expect(await attempt(url, pro, 'd', opened)).toEqual(QUOTA_REFUSAL)
    // Once the laptop disconnects, the tablet may connect.
    const laptop = opened[1]!
    laptop.disconnect()
    await expect.poll(() => attempt(url, free, 'tablet', opened), { timeout: 5000, interval: 50 }).toBe('connected')
  })

  it('a socket over the connections-per-user limit is refused at connect, whatever its device', async () => {
    const { url } = await t.start(undefined, { plans: plans({ devicesPerUser: 10, connectionsPerUser: 3 }) })
    const free = await tokenFor('alice')
    for (const d of ['phone', 'phone', 'laptop']) expect(await attempt(url, free, d, opened)).toBe('connected')
    expect(await attempt(url, free, 'phone', opened)).toEqual(QUOTA_REFUSAL)
    expect(await attempt(url, free, 'tablet', opened)).toEqual(QUOTA_REFUSAL)
    expect(await attempt(url, await tokenFor('bob', 'pro'), 'tablet', opened)).toBe('connected')
    opened[0]!.disconnect()
    await expect.poll(() => attempt(url, free, 'tablet', opened), { timeout: 5000, interval: 50 }).toBe('connected')
  })

  it('a Yjs update creating entities past the per-type limit is QUOTA_EXCEEDED and nothing of it is applied', async () => {
    const { url } = await t.start(undefined, { plans: plans({ entitiesPerType: 3 }, { entitiesPerType: 5 }) })
    const a = await connect(url, await tokenFor('alice'), 'phone', opened)
    expect(await sendUpdate(a, clipsUpdate(['c1', 'c2']))).toMatchObject({ ok: true })
    const before = a.errors.length
    // Two more clips (one of them alone would fit): the whole update is refused.
    expect(await sendUpdate(a, clipsUpdate(['c3', 'c4']))).toEqual(refused('QUOTA_EXCEEDED'))
    await expectSyncError(a, before, 'QUOTA_EXCEEDED', 'sync:update')
    expect(await counts('alice')).toMatchObject({ clip: 2 })
    // The limit is per type: folders are not clips.
    expect(await sendUpdate(a, clipsUpdate(['f1', 'f2', 'f3'], 'n', 'folders'))).toMatchObject({ ok: true })
    expect(await sendUpdate(a, clipsUpdate(['c3']))).toMatchObject({ ok: true })
    expect(await sendUpdate(a, clipsUpdate(['c4']))).toEqual(refused('QUOTA_EXCEEDED'))
    expect(await counts('alice')).toMatchObject({ clip: 3, folder: 3 })
    // Edits of existing entities still apply at the limit.
    expect(await sendChange(a, 'update', 'clip', 'c1', { title: 'still editable' })).toMatchObject({ ok: true })
    // A soft-deleted entity is not live: deleting one makes room for one.
    expect(await sendChange(a, 'delete', 'clip', 'c2')).toMatchObject({ ok: true })
    expect(await sendUpdate(a, clipsUpdate(['c4']))).toMatchObject({ ok: true })
    expect(await counts('alice')).toMatchObject({ clip: 3 })
    // A pro token of the same user gets the pro limit.
    const p = await connect(url, await tokenFor('alice', 'pro'), 'desktop', opened)
    expect(await sendUpdate(p, clipsUpdate(['c5', 'c6']))).toMatchObject({ ok: true })
    expect(await sendUpdate(p, clipsUpdate(['c7']))).toEqual(refused('QUOTA_EXCEEDED'))
    expect(await counts('alice')).toMatchObject({ clip: 5 })
  })

  it('a JSON create past the per-type limit is QUOTA_EXCEEDED; updates and re-creating a live entity are not creates', async () => {
    const { url } = await t.start(undefined, { plans: plans({ entitiesPerType: 2 }) })
    const a = await connect(url, await tokenFor('alice'), 'web', opened)
    expect(await sendChange(a, 'create', 'tag', 't1', { name: 'one' })).toMatchObject({ ok: true })
    expect(await sendChange(a, 'create', 'tag', 't2', { name: 'two' })).toMatchObject({ ok: true })
    const before = a.errors.length
    expect(await sendChange(a, 'create', 'tag', 't3', { name: 'three' })).toEqual(refused('QUOTA_EXCEEDED'))
    await expectSyncError(a, before, 'QUOTA_EXCEEDED', 'sync:entity_created')
    expect(await sendChange(a, 'create', 'tag', 't1', { name: 'one again' })).toMatchObject({ ok: true })
    expect(await sendChange(a, 'update', 'tag', 't2', { color: 'red' })).toMatchObject({ ok: true })
    expect(await counts('alice')).toMatchObject({ tag: 2 })
    // Deleting one frees a place; re-creating the deleted one takes it back.
    expect(await sendChange(a, 'delete', 'tag', 't2')).toMatchObject({ ok: true })
    expect(await sendChange(a, 'create', 'tag', 't3', { name: 'three' })).toMatchObject({ ok: true })
    expect(await sendChange(a, 'create', 'tag', 't2', { name: 'back' })).toEqual(refused('QUOTA_EXCEEDED'))
    expect(await counts('alice')).toMatchObject({ tag: 2 })
    const web = t.track(await JsonDevice.connect(url, await tokenFor('alice'), 'check', { includeDeleted: true }))
    expect(web.entity('tag', 't2')?.deleted).toBe(true)
    expect(web.entity('tag', 't3')).toBeDefined()
  })

  it('a Yjs update or change data over the update-bytes limit is PAYLOAD_TOO_LARGE and not stored', async () => {
    const { url } = await t.start(undefined, { plans: plans({ updateBytes: 2000 }, { updateBytes: 8000 }) })
    const a = await connect(url, await tokenFor('alice'), 'phone', opened)
    const big = clipsUpdate(['big'], 'x'.repeat(3000))
    let before = a.errors.length
    expect(await sendUpdate(a, big)).toEqual(refused('PAYLOAD_TOO_LARGE'))
    await expectSyncError(a, before, 'PAYLOAD_TOO_LARGE', 'sync:update')
    before = a.errors.length
    expect(await sendChange(a, 'create', 'clip', 'big2', { content: 'y'.repeat(3000) })).toEqual(refused('PAYLOAD_TOO_LARGE'))
    await expectSyncError(a, before, 'PAYLOAD_TOO_LARGE', 'sync:entity_created')
    expect(await sendUpdate(a, clipsUpdate(['small'], 'x'.repeat(1000)))).toMatchObject({ ok: true })
    expect(await counts('alice')).toMatchObject({ clip: 1 })
    // Pro allows it.
    const p = await connect(url, await tokenFor('alice', 'pro'), 'laptop', opened)
    expect(await sendUpdate(p, big)).toMatchObject({ ok: true })
    expect(await counts('alice')).toMatchObject({ clip: 2 })
  })

  it('writes that would take the document past its byte limit are QUOTA_EXCEEDED; the document stays as it was', async () => {
    const { url } = await t.start(undefined, { plans: plans({ documentBytes: 10_000 }) })
    const a = await connect(url, await tokenFor('alice'), 'phone', opened)
    let accepted = 0
    let reply: Reply | undefined
    for (let i = 0; i < 50; i++) {
      reply = await sendUpdate(a, clipsUpdate([`c${i}`], 'z'.repeat(900)))
      if (!reply.ok) break
      accepted++
    }
    expect(reply).toEqual(refused('QUOTA_EXCEEDED'))
    expect(accepted).toBeGreaterThan(5)
    expect(accepted).toBeLessThan(11)
    expect(await sendChange(a, 'create', 'clip', 'json', { content: 'z'.repeat(900) })).toEqual(refused('QUOTA_EXCEEDED'))
    expect(await counts('alice')).toMatchObject({ clip: accepted })
    // The limit holds across a restart (the estimate is the stored log's size).
    a.socket.disconnect()
    const dir = t.server.config.dataDir
    await t.server.stop()
    const again = await t.start(dir, { plans: plans({ documentBytes: 10_000 }) })
    const b = await connect(again.url, await tokenFor('alice'), 'phone', opened)
    expect(await sendUpdate(b, clipsUpdate(['late'], 'z'.repeat(900)))).toEqual(refused('QUOTA_EXCEEDED'))
    expect(await counts('alice')).toMatchObject({ clip: accepted })
  })

  it('a merged conflict resolution is held to the plan: a value over updateBytes is PAYLOAD_TOO_LARGE, the conflict stays open', async () => {
    const { url } = await t.start(undefined, { plans: plans({ updateBytes: 2000 }) })
    const a = await connect(url, await tokenFor('alice'), 'phone', opened)
    const b = await connect(url, await tokenFor('alice'), 'laptop', opened)
    const seen = conflictLog(a.socket)
    expect(await sendChange(a, 'create', 'clip', 'c1', { content: 'first' })).toMatchObject({ ok: true })
    // From version 0 while the clip is at version 1: a conflict on the manual field `content`.
    expect(await sendChange(b, 'update', 'clip', 'c1', { content: 'second' })).toMatchObject({ ok: true })
    await waitFor(() => seen.length === 1, 'the conflict')
    const conflictId = seen[0]?.id ?? ''
    const tooBig = await resolveConflict(b.socket, { conflictId, winningVersion: 'merged', mergedData: { content: 'm'.repeat(3000) } })
    expect(tooBig).toEqual(refused('PAYLOAD_TOO_LARGE'))
    expect((await requestStatus(a.socket, 'phone')).conflicts).toEqual([conflictId])
    const fine = await resolveConflict(b.socket, { conflictId, winningVersion: 'merged', mergedData: { content: 'merged' } })
    expect(fine).toMatchObject({ ok: true, conflictId })
  })

  it('reviving a soft-deleted entity by a Yjs write of _deleted: false counts as a new live one: QUOTA_EXCEEDED past the limit', async () => {
    const { url } = await t.start(undefined, { plans: plans({ entitiesPerType: 2 }) })
    const a = await connect(url, await tokenFor('alice'), 'phone', opened)
    const doc = new Y.Doc()
    const edit = (on: Y.Doc, fn: (clips: Y.Map<Y.Map<unknown>>) => void): Uint8Array => {
      const before = Y.encodeStateVector(on)
      on.transact(() => fn(on.getMap('clips')))
      return Y.encodeStateAsUpdate(on, before)
    }
    const newClip = (id: string) => edit(doc, (clips) => clips.set(id, new Y.Map<unknown>([['content', id]])))
    const setDeleted = (id: string, deleted: boolean, on = doc) =>
      edit(on, (clips) => {
        clips.get(id)?.set('_deleted', deleted)
        clips.get(id)?.set('deletedAt', deleted ? Date.now() : null)
      })
    expect(await sendUpdate(a, newClip('c1'))).toMatchObject({ ok: true })
    expect(await sendUpdate(a, newClip('c2'))).toMatchObject({ ok: true })
    expect(await sendUpdate(a, setDeleted('c1', true))).toMatchObject({ ok: true })
    expect(await sendUpdate(a, newClip('c3'))).toMatchObject({ ok: true })
    expect(await counts('alice')).toMatchObject({ clip: 2 })
    // Another device (its own Yjs client) holds the same state, for an edit that does not follow the refused one.
    const other = new Y.Doc()
    Y.applyUpdate(other, Y.encodeStateAsUpdate(doc))
    const revive = setDeleted('c1', false)
    expect(await sendUpdate(a, revive)).toEqual(refused('QUOTA_EXCEEDED'))
    expect(await counts('alice')).toMatchObject({ clip: 2 })
    // With a place free again, the same update is accepted.
    expect(await sendUpdate(a, setDeleted('c3', true, other))).toMatchObject({ ok: true })
    expect(await sendUpdate(a, revive)).toMatchObject({ ok: true })
    expect(await counts('alice')).toMatchObject({ clip: 2 })
  })
})
