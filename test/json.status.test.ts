/**
 * `sync:status` (protocol §7): entity counts, pending changes, the last
 * completed sync, progress, the last error, open conflicts and the plan, after
 * every kind of change and across a restart.
 */
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import type { Plan, StatusPayload } from '../src/types/events.js'
import { YjsDevice, waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import type { JsonDevice} from './helpers/json-device.js';
import { yjsWrite, type SyncComplete } from './helpers/json-device.js'
import { tokenFor } from './helpers/server.js'
import { requestStatus } from './helpers/conflicts.js'

const ZERO = { clip: 0, folder: 0, set: 0, tag: 0, template: 0, setting: 0 }

/** `sync:status` on a Yjs device's socket. */
const yjsStatus = (y: YjsDevice): Promise<StatusPayload> => requestStatus(y.socket, y.deviceId)

/** The payload of the last `sync:complete` a JSON device received. */
function lastComplete(d: JsonDevice): SyncComplete {
  const complete = d.messages.filter((m) => m.event === 'sync:complete').at(-1)?.payload as SyncComplete | undefined
  if (!complete) throw new Error(`${d.deviceId} has completed no sync`)
  return complete
}

describe('sync status accurate after every kind of change (protocol §7)', () => {
  const t = useServer()
  const unsynced = (deviceId: string, userId = 'alice', plan?: Plan) => t.unsyncedJsonDevice(userId, deviceId, plan)

  it('before any sync: lastSyncTimestamp 0, no lastError, every entity pending, counts by type; { deviceId } or a bare string; plan from the token', async () => {
    await t.start()
    const w = await t.jsonDevice('alice', 'writer')
    await w.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'x' } })
    await w.write('create', { entityType: 'folder', entityId: 'f1', data: { name: 'F' } })

    const fresh = await unsynced('fresh')
    const status = await fresh.status()
    expect(status).toEqual({
      userId: 'alice',
      deviceId: 'fresh',
      lastSyncTimestamp: 0,
      pendingChanges: 2,
      inProgress: false,
      entityCounts: { ...ZERO, clip: 1, folder: 1 },
      conflicts: [],
      plan: 'free',
    })
    expect(await fresh.status('fresh')).toEqual(status)

    const pro = await unsynced('laptop', 'carol', 'pro')
    expect(await pro.status('laptop')).toMatchObject({ userId: 'carol', plan: 'pro', entityCounts: ZERO, pendingChanges: 0 })

    for (const bad of [42, null, { deviceId: 'bad id!' }, { nope: true }]) {
      expect(await fresh.socket.emitWithAck('sync:status', bad)).toEqual({
        ok: false,
        error: { code: 'INVALID_PAYLOAD', message: expect.any(String) },
      })
    }
  })

  it('entityCounts count live entities per type after every kind of change, by either path', async () => {
    await t.start()
    const j = await t.jsonDevice('alice', 'web')
    const y = await t.device('alice', 'phone')
    const bob = await t.jsonDevice('bob', 'web')
    const counts = async () => (await j.status()).entityCounts
    expect(await counts()).toEqual(ZERO)

    await j.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'one' } })
    expect(await counts()).toEqual({ ...ZERO, clip: 1 })
    await j.write('create', { entityType: 'folder', entityId: 'f1', data: { name: 'F' } })
    await j.write('update', { entityType: 'clip', entityId: 'c1', data: { pinned: true } })
    expect(await counts()).toEqual({ ...ZERO, clip: 1, folder: 1 })

    await yjsWrite(y, (doc) => {
      doc.getMap('clips').set('c2', new Y.Map<unknown>([['content', 'two']]))
      doc.getMap('tags').set('t1', new Y.Map<unknown>([['name', 'T']]))
      doc.getMap('settings').set('theme', new Y.Map<unknown>([['value', 'dark']]))
      doc.getMap('templates').set('tp', new Y.Map<unknown>([['name', 'sig'], ['body', new Y.Text('Hi')]]))
      doc.getMap('sets').set('s1', new Y.Map<unknown>([['name', 'S'], ['clipIds', Y.Array.from(['c1'])]]))
    })
    const all = { clip: 2, folder: 1, set: 1, tag: 1, template: 1, setting: 1 }
    expect(await counts()).toEqual(all)

    await j.write('delete', { entityType: 'clip', entityId: 'c1' })
    expect(await counts()).toEqual({ ...all, clip: 1 })
    await j.write('delete', { entityType: 'clip', entityId: 'c1' })
    expect(await counts()).toEqual({ ...all, clip: 1 })
    await yjsWrite(y, (doc) => {
      const c2 = doc.getMap('clips').get('c2') as Y.Map<unknown>
      c2.set('_deleted', true)
      c2.set('deletedAt', Date.now())
    })
    expect(await counts()).toEqual({ ...all, clip: 0 })
    await j.write('delete', { entityType: 'folder', entityId: 'f1' })
    expect(await counts()).toEqual({ ...all, clip: 0, folder: 0 })

    // Re-creating a deleted entity (JSON) or clearing _deleted (Yjs) makes it live again.
    await j.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'back' } })
    expect(await counts()).toEqual({ ...all, clip: 1, folder: 0 })
    await yjsWrite(y, (doc) => (doc.getMap('clips').get('c2') as Y.Map<unknown>).set('_deleted', false))
    expect(await counts()).toEqual({ ...all, clip: 2, folder: 0 })

    // The same on any socket of the user, none of it on another user's.
    expect((await yjsStatus(y)).entityCounts).toEqual({ ...all, clip: 2, folder: 0 })
    expect((await bob.status()).entityCounts).toEqual(ZERO)
  })

  it('pendingChanges: 0 for a live socket; grows by entity for a paused one, 0 again after resume; what a reconnecting device missed', async () => {
    await t.start()
    const w = await t.jsonDevice('alice', 'writer')
    await w.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'one' } })
    await w.write('create', { entityType: 'clip', entityId: 'c2', data: { content: 'two' } })
    const live = await t.jsonDevice('alice', 'live')
    const paused = await t.jsonDevice('alice', 'paused')
    const pausedYjs = await t.device('alice', 'phone')
    const roamer = await t.jsonDevice('alice', 'roamer')
    const roamerSync = lastComplete(roamer)
    roamer.close()
    await paused.pause()
    await pausedYjs.socket.emitWithAck('sync:pause', {})
    const pending = async () => [(await live.status()).pendingChanges, (await paused.status()).pendingChanges, (await yjsStatus(pausedYjs)).pendingChanges]
    expect(await pending()).toEqual([0, 0, 0])

    await w.write('update', { entityType: 'clip', entityId: 'c1', data: { title: 'a' } })
    expect(await pending()).toEqual([0, 1, 1])
    await w.write('update', { entityType: 'clip', entityId: 'c1', data: { title: 'b' } })
    expect(await pending()).toEqual([0, 1, 1])
    await w.write('create', { entityType: 'clip', entityId: 'c3', data: { content: 'three' } })
    await w.write('delete', { entityType: 'clip', entityId: 'c2' })
    const y = await t.device('alice', 'tablet')
    await yjsWrite(y, (doc) => doc.getMap('tags').set('t1', new Y.Map<unknown>([['name', 'T']])))
    expect(await pending()).toEqual([0, 4, 4])

    await paused.resume()
    const resumed = new Promise<void>((resolve) => pausedYjs.socket.once('sync:complete', () => resolve()))
    await pausedYjs.socket.emitWithAck('sync:resume', {})
    await resumed
    expect(await pending()).toEqual([0, 0, 0])

    // A device that went away: a new socket of it sees, before syncing, what changed since its last sync.
    const back = await unsynced('roamer')
    expect(await back.status()).toMatchObject({ lastSyncTimestamp: roamerSync.serverTimestamp, pendingChanges: 4 })
    await back.sync({ lastSyncTimestamp: roamerSync.cursor })
    expect(back.pages.at(-1)?.changes).toHaveLength(4)
    expect(await back.status()).toMatchObject({ pendingChanges: 0, lastSyncTimestamp: lastComplete(back).serverTimestamp })
  })

  it("lastSyncTimestamp is the last completed sync's serverTimestamp, for change-log, resumed and Yjs syncs", async () => {
    await t.start()
    const w = await t.jsonDevice('alice', 'writer')
    await w.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'one', pinned: false } })
    // A change that changes nothing still takes a clock value: the clock is then past every entity's timestamp.
    const noop = await w.write('update', { entityType: 'clip', entityId: 'c1', data: { pinned: false } })
    expect(noop.version).toBe(1)

    const j = await t.jsonDevice('alice', 'web')
    const complete = lastComplete(j)
    expect(complete.serverTimestamp).toBe(noop.serverTimestamp)
    expect((await j.status()).lastSyncTimestamp).toBe(complete.serverTimestamp)

    await j.pause()
    await w.write('update', { entityType: 'clip', entityId: 'c1', data: { pinned: true } })
    const noop2 = await w.write('update', { entityType: 'clip', entityId: 'c1', data: { pinned: true } })
    const { complete: afterResume } = await j.resume()
    expect(afterResume?.serverTimestamp).toBe(noop2.serverTimestamp)
    expect((await j.status()).lastSyncTimestamp).toBe(afterResume?.serverTimestamp)

    const y = new YjsDevice(t.server.url, await tokenFor('alice'), 'phone')
    t.track(y)
    const yjsComplete = new Promise<SyncComplete>((resolve) => y.socket.once('sync:complete', resolve))
    y.socket.connect()
    await y.synced()
    const { serverTimestamp } = await yjsComplete
    expect(serverTimestamp).toBe(noop2.serverTimestamp)
    expect((await yjsStatus(y)).lastSyncTimestamp).toBe(serverTimestamp)
  })

  it('inProgress is true between a page with hasMore and the last page', async () => {
    await t.start()
    const w = await t.jsonDevice('alice', 'writer')
    for (const id of ['a', 'b', 'c']) await w.write('create', { entityType: 'clip', entityId: id, data: { content: id } })
    const r = await unsynced('reader')
    expect((await r.status()).inProgress).toBe(false)

    const first = await r.syncPage({ limit: 1 })
    expect(first.page?.hasMore).toBe(true)
    expect(await r.status()).toMatchObject({ inProgress: true, lastSyncTimestamp: 0 })
    const second = await r.syncPage({ limit: 1, lastSyncTimestamp: first.page?.cursor ?? -1 })
    expect(second.page?.hasMore).toBe(true)
    expect((await r.status()).inProgress).toBe(true)
    const third = await r.syncPage({ limit: 1, lastSyncTimestamp: second.page?.cursor ?? -1 })
    expect(third.page?.hasMore).toBe(false)
    expect(await r.status()).toMatchObject({ inProgress: false, lastSyncTimestamp: third.page?.serverTimestamp })

    // A new paged sync is in progress again until its last page.
    await r.syncPage({ limit: 2 })
    expect((await r.status()).inProgress).toBe(true)
    await r.syncPage({ limit: 10 })
    expect((await r.status()).inProgress).toBe(false)
    // Another socket's paging is not this one's.
    const other = await t.jsonDevice('alice', 'other')
    await r.syncPage({ limit: 1 })
    expect((await other.status()).inProgress).toBe(false)
  })

  it('lastError is the last error this socket was sent', async () => {
    await t.start()
    const j = await t.jsonDevice('alice', 'web')
    const other = await t.jsonDevice('alice', 'tablet')
    expect((await j.status()).lastError).toBeUndefined()

    const refused = await j.syncPage({ limit: 0 })
    if (refused.reply.ok) throw new Error('limit 0 accepted')
    expect((await j.status()).lastError).toContain('INVALID_PAYLOAD')
    expect((await j.status()).lastError).toContain(refused.reply.error.message)

    const missing = await j.send('update', { entityType: 'clip', entityId: 'missing', data: { title: 'x' } })
    if (missing.ok) throw new Error('update of a missing entity accepted')
    expect(missing.error.code).toBe('NOT_FOUND')
    const status = await j.status()
    expect(status.lastError).toContain('NOT_FOUND')
    expect(status.lastError).not.toContain('INVALID_PAYLOAD')

    // It stays the last error sent after successes, and it is this socket's alone.
    await j.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'ok' } })
    await j.sync({ lastSyncTimestamp: j.cursor ?? 0 })
    expect((await j.status()).lastError).toBe(status.lastError)
    expect((await other.status()).lastError).toBeUndefined()
  })

  it("conflicts lists the user's unresolved conflict ids on every socket until they are resolved", async () => {
    await t.start()
    const a = await t.jsonDevice('alice', 'a')
    const b = await t.jsonDevice('alice', 'b')
    const y = await t.device('alice', 'phone')
    const bob = await t.jsonDevice('bob', 'web')
    await a.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v1' } })
    await a.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from a' }, version: 1 })
    const stale = await b.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from b' }, version: 1 })
    const conflicts = stale.conflicts as string[]
    expect(conflicts).toHaveLength(1)

    const fresh = await unsynced('fresh')
    for (const s of [await a.status(), await b.status(), await fresh.status(), await yjsStatus(y)]) {
      expect(s.conflicts).toEqual(conflicts)
    }
    expect((await bob.status()).conflicts).toEqual([])
    const counts = (await a.status()).entityCounts

    const resolved = await b.socket.emitWithAck('sync:conflict', { conflictId: conflicts[0], winningVersion: 'client' })
    expect(resolved).toMatchObject({ ok: true })
    for (const s of [await a.status(), await b.status(), await yjsStatus(y)]) expect(s.conflicts).toEqual([])
    expect((await a.status()).entityCounts).toEqual(counts)
    await waitFor(() => a.entity('clip', 'c1')?.data.content === 'from b', 'the resolution on a')
  })

  it('status survives a restart: last sync, pending changes, counts and open conflicts', async () => {
    const server = await t.start()
    const a = await t.jsonDevice('alice', 'a')
    await a.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v1' } })
    await a.write('create', { entityType: 'folder', entityId: 'f1', data: { name: 'F' } })
    await a.write('create', { entityType: 'clip', entityId: 'gone', data: { content: 'x' } })
    await a.write('delete', { entityType: 'clip', entityId: 'gone' })
    await a.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from a' }, version: 1 })
    const stale = await a.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'stale' }, version: 1 })
    expect(stale.conflicts).toHaveLength(1)
    const web = await t.jsonDevice('alice', 'web')
    const synced = lastComplete(web)
    const before = await web.status()
    expect(before).toMatchObject({ lastSyncTimestamp: synced.serverTimestamp, pendingChanges: 0, conflicts: stale.conflicts })

    await t.start(server.config.dataDir)
    const again = await unsynced('web', 'alice', 'pro')
    expect(await again.status()).toEqual({
      ...before,
      entityCounts: { ...ZERO, clip: 1, folder: 1 },
      inProgress: false,
      plan: 'pro',
    })
    const never = await unsynced('never')
    expect(await never.status()).toMatchObject({ lastSyncTimestamp: 0, pendingChanges: 3 })

    const writer = await t.jsonDevice('alice', 'writer')
    await writer.write('update', { entityType: 'folder', entityId: 'f1', data: { name: 'G' } })
    expect((await again.status()).pendingChanges).toBe(1)
    await again.sync({ lastSyncTimestamp: synced.cursor })
    expect(await again.status()).toMatchObject({ pendingChanges: 0, lastSyncTimestamp: lastComplete(again).serverTimestamp })
    expect(lastComplete(again).serverTimestamp).toBeGreaterThan(synced.serverTimestamp)
  })
})
