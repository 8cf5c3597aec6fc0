/**
 * Operators (protocol §9): snapshots, restore as a forward change, trash,
 * devices, users, erasure, over the admin HTTP API of a real server with
 * live Yjs and JSON devices.
 */
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { docIdOfKey } from '../src/repositories/keys.js'
import { openStore } from '../src/repositories/level-store.js'
import type { SnapshotMeta } from '../src/models/records.js'
import { expiredSnapshots, parseRetention } from '../src/services/operators/snapshot-schedule.js'
import { AdminClient } from './helpers/admin-client.js'
import { snapshot, waitFor, type YjsDevice } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { changeOf, HttpSync } from './helpers/http-client.js'
import type { JsonDevice } from './helpers/json-device.js'
import { attempt, openedSockets } from './helpers/raw-client.js'
import { tokenFor } from './helpers/server.js'

const DAY = 24 * 3600_000
const errorBody = (code: string) => ({ error: { code, message: expect.any(String) } })
const clipOf = (y: YjsDevice, id: string) => y.clips().get(id)

describe('operators (protocol §9)', () => {
  const t = useServer()
  const opened = openedSockets()
  const admin = () => new AdminClient(t.server.url, t.server.config.adminToken)

  /** alice with clips c1 and c2 (made by a JSON device) and a live Yjs device. */
  async function aliceWithClips(): Promise<{ y: YjsDevice; j: JsonDevice }> {
    await t.start()
    const j = await t.jsonDevice('alice', 'web')
    await j.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'one', title: 'first' } })
    await j.write('create', { entityType: 'clip', entityId: 'c2', data: { content: 'two' } })
    const y = await t.device('alice', 'phone')
    return { y, j }
  }

  async function takeSnapshot(label?: string): Promise<SnapshotMeta> {
    const reply = await admin().post<SnapshotMeta>('/admin/users/alice/snapshots', label === undefined ? {} : { label })
    expect(reply.status).toBe(201)
    return reply.body
  }

  it('snapshot, edit, restore: live Yjs and JSON devices get forward changes, versions move on, a before-restore snapshot is kept', async () => {
    const { y, j } = await aliceWithClips()
    const taken = await takeSnapshot('before the edits')
    expect(taken).toMatchObject({ userId: 'alice', reason: 'manual', label: 'before the edits', entityCounts: { clip: 2 }, bytes: expect.any(Number) })

    void y.write(() => clipOf(y, 'c1')?.set('title', 'edited on the phone'))
    await y.flushed()
    await j.write('delete', { entityType: 'clip', entityId: 'c2' })
    await j.write('create', { entityType: 'clip', entityId: 'c3', data: { content: 'three' } })
    const versionsBefore = ['c1', 'c2', 'c3'].map((id) => j.entity('clip', id)?.version ?? 0)

    const restored = await admin().post('/admin/users/alice/restore', { snapshotId: taken.id })
    expect(restored).toMatchObject({
      status: 200,
      body: { restoredFrom: taken.id, snapshotBefore: expect.any(String), changed: { deleted: 1, revived: 1, updated: 1 }, serverTimestamp: expect.any(Number) },
    })
    await waitFor(() => clipOf(y, 'c1')?.get('title') === 'first' && clipOf(y, 'c2')?.get('_deleted') === false && clipOf(y, 'c3')?.get('_deleted') === true, 'the restore on the Yjs device')
    await waitFor(() => (j.entity('clip', 'c3')?.deleted ?? false) && j.entity('clip', 'c2')?.deleted === false, 'the restore on the JSON device')
    expect(['c1', 'c2', 'c3'].map((id, i) => (j.entity('clip', id)?.version ?? 0) > (versionsBefore[i] ?? 0))).toEqual([true, true, true])
    expect(j.entity('clip', 'c1')?.data).toMatchObject({ content: 'one', title: 'first' })

    const list = await admin().get<{ snapshots: SnapshotMeta[] }>('/admin/users/alice/snapshots')
    expect(list.body.snapshots.map((s) => s.reason)).toEqual(['before-restore', 'manual'])
    const before = await admin().get<SnapshotMeta & { document: Record<string, Record<string, Record<string, unknown>>> }>(`/admin/users/alice/snapshots/${String(restored.body.snapshotBefore)}`)
    expect(before.body.document.clips?.c1).toMatchObject({ title: 'edited on the phone' })
    expect(before.body.document.clips?.c3).toMatchObject({ content: 'three' })
    // A dry run counts without writing.
    const dry = await admin().post('/admin/users/alice/restore', { snapshotId: restored.body.snapshotBefore, dryRun: true })
    expect(dry.body).toMatchObject({ snapshotBefore: null, changed: { deleted: 1, revived: 1, updated: 1 } })
    expect(clipOf(y, 'c3')?.get('_deleted')).toBe(true)
  })

  it('a device offline during the restore keeps what it wrote meanwhile', async () => {
    const { y } = await aliceWithClips()
    const taken = await takeSnapshot()
    void y.write(() => clipOf(y, 'c1')?.set('title', 'online edit'))
    await y.flushed()
    // The laptop holds the online edit, goes offline and writes over it; the restore writes over it too.
    const offline = await t.device('alice', 'laptop')
    expect(clipOf(offline, 'c1')?.get('title')).toBe('online edit')
    offline.goOffline()
    clipOf(offline, 'c1')?.set('title', 'written offline')
    offline.doc.transact(() => offline.clips().set('c4', new Y.Map<unknown>([['content', 'made offline']])))

    expect((await admin().post('/admin/users/alice/restore', { snapshotId: taken.id })).status).toBe(200)
    await waitFor(() => clipOf(y, 'c1')?.get('title') === 'first', 'the restore on the online device')
    await offline.reconnect()
    await offline.flushed()
    await waitFor(() => clipOf(y, 'c1')?.get('title') === 'written offline' && clipOf(y, 'c4') !== undefined, 'the offline edits on the online device')
    const fresh = await t.device('alice', 'fresh')
    expect(snapshot(fresh.doc)).toEqual(snapshot(y.doc))
    expect(fresh.clips().toJSON()).toMatchObject({ c1: { title: 'written offline' }, c4: { content: 'made offline' } })
  })

  it('restore to a time takes the newest snapshot taken at or before it; one-entity restore touches only that entity', async () => {
    const { j } = await aliceWithClips()
    const first = await takeSnapshot('first')
    await j.write('update', { entityType: 'clip', entityId: 'c1', data: { title: 'second' } })
    await j.write('update', { entityType: 'clip', entityId: 'c2', data: { title: 'second' } })
    const second = await takeSnapshot('second')
    await j.write('update', { entityType: 'clip', entityId: 'c1', data: { title: 'third' } })
    await j.write('update', { entityType: 'clip', entityId: 'c2', data: { title: 'third' } })

    const one = await admin().post('/admin/users/alice/restore', { snapshotId: first.id, entityType: 'clip', entityId: 'c2' })
    expect(one.body).toMatchObject({ changed: { deleted: 0, revived: 0, updated: 1 } })
    let doc = (await admin().get<Record<string, Record<string, Record<string, unknown>>>>('/admin/users/alice/document')).body
    expect([doc.clips?.c1?.title, doc.clips?.c2?.title]).toEqual(['third', undefined])

    const atSecond = await admin().post('/admin/users/alice/restore', { at: second.takenAt })
    expect(atSecond.body).toMatchObject({ restoredFrom: second.id })
    doc = (await admin().get<Record<string, Record<string, Record<string, unknown>>>>('/admin/users/alice/document')).body
    expect([doc.clips?.c1?.title, doc.clips?.c2?.title]).toEqual(['second', 'second'])
    expect(await admin().post('/admin/users/alice/restore', { at: first.takenAt - 1 })).toMatchObject({ status: 404, body: errorBody('NOT_FOUND') })
    expect(await admin().post('/admin/users/alice/restore', { snapshotId: first.id, entityType: 'clip', entityId: 'nope' })).toMatchObject({ status: 404 })
  })

  it('export then import into another user gives the same content', async () => {
    await aliceWithClips()
    const taken = await takeSnapshot()
    const exported = await admin().get<Uint8Array>(`/admin/users/alice/snapshots/${taken.id}/export`)
    expect(exported.headers.get('content-type')).toContain('application/octet-stream')
    expect(exported.body.byteLength).toBe(taken.bytes)
    const imported = await admin().request<SnapshotMeta>('POST', '/admin/users/bob/snapshots/import?label=from%20alice', exported.body, 'application/octet-stream')
    expect(imported).toMatchObject({ status: 201, body: { userId: 'bob', reason: 'import', label: 'from alice', entityCounts: { clip: 2 } } })
    expect((await admin().post('/admin/users/bob/restore', { snapshotId: imported.body.id })).body).toMatchObject({ changed: { revived: 2 } })
    const [alice, bob] = await Promise.all([admin().get('/admin/users/alice/document'), admin().get('/admin/users/bob/document')])
    expect(bob.body).toEqual(alice.body)
    const bobDevice = await t.jsonDevice('bob', 'web')
    expect(bobDevice.entity('clip', 'c1')?.data).toMatchObject({ content: 'one', title: 'first' })
    // Garbage is not a snapshot.
    const junk = await admin().request('POST', '/admin/users/bob/snapshots/import', new Uint8Array([1, 2, 3, 250]), 'application/octet-stream')
    expect(junk).toMatchObject({ status: 400, body: errorBody('INVALID_PAYLOAD') })
  })

  it('trash: list, restore one, and purge past the retention with a controlled clock', async () => {
    const { y, j } = await aliceWithClips()
    await j.write('delete', { entityType: 'clip', entityId: 'c1' })
    await j.write('delete', { entityType: 'clip', entityId: 'c2' })
    const trash = await admin().get<{ entities: { entityId: string }[] }>('/admin/users/alice/trash')
    expect(trash.body.entities.map((e) => e.entityId).sort()).toEqual(['c1', 'c2'])
    expect(trash.body.entities[0]).toMatchObject({ entityType: 'clip', deletedAt: expect.any(Number), deviceId: 'web' })

    const revived = await admin().post('/admin/users/alice/trash/restore', { entityType: 'clip', entityId: 'c1' })
    expect(revived).toMatchObject({ status: 200, body: { entityType: 'clip', entityId: 'c1', version: 3 } })
    await waitFor(() => j.entity('clip', 'c1')?.deleted === false && clipOf(y, 'c1')?.get('_deleted') === false, 'the revived clip on both devices')
    expect(await admin().post('/admin/users/alice/trash/restore', { entityType: 'clip', entityId: 'c1' })).toMatchObject({ status: 404 })

    const doc = t.server.services.registry.peek('alice')
    if (!doc) throw new Error('alice is not loaded')
    expect(await t.server.services.operators.purgeTrash(doc, Date.now() + 29 * DAY)).toBe(0)
    expect(await t.server.services.operators.purgeTrash(doc, Date.now() + 31 * DAY)).toBe(1)
    await waitFor(() => clipOf(y, 'c2') === undefined, 'the purge on the Yjs device')
    expect((await admin().get<{ entities: unknown[] }>('/admin/users/alice/trash')).body.entities).toEqual([])
    const fresh = await t.jsonDevice('alice', 'fresh', { includeDeleted: true })
    expect([...fresh.entities.keys()]).toEqual(['clip:c1'])
  })

  it('devices: listed, disconnected, revoked (refused at connect and over HTTP, across a restart) and unrevoked', async () => {
    const { y } = await aliceWithClips()
    const devices = await admin().get<{ devices: { deviceId: string; connected: boolean; revoked: boolean }[] }>('/admin/users/alice/devices')
    expect(devices.body.devices).toEqual([
      expect.objectContaining({ deviceId: 'phone', connected: true, revoked: false, lastSyncTimestamp: expect.any(Number) }),
      expect.objectContaining({ deviceId: 'web', connected: true, revoked: false }),
    ])
    const closed = new Promise((resolve) => y.socket.once('disconnect', resolve))
    expect((await admin().post('/admin/users/alice/devices/phone/disconnect')).status).toBe(204)
    expect(await closed).toBe('io server disconnect')

    expect((await admin().post('/admin/users/alice/devices/phone/revoke')).status).toBe(204)
    const refused = { message: 'unauthorized', data: { code: 'REVOKED', message: expect.any(String) } }
    expect(await attempt(t.server.url, await tokenFor('alice'), 'phone', opened)).toEqual(refused)
    expect(await attempt(t.server.url, await tokenFor('alice'), 'tablet', opened)).toBe('connected')
    expect(await new HttpSync(t.server.url, await tokenFor('alice'), 'phone').status()).toMatchObject({ status: 401, body: errorBody('REVOKED') })

    await t.start(t.server.config.dataDir)
    expect(await attempt(t.server.url, await tokenFor('alice'), 'phone', opened)).toEqual(refused)
    expect((await admin().get<{ devices: { deviceId: string; revoked: boolean }[] }>('/admin/users/alice/devices')).body.devices.find((d) => d.deviceId === 'phone')).toMatchObject({ revoked: true, connected: false })
    expect((await admin().delete('/admin/users/alice/devices/phone/revoke')).status).toBe(204)
    expect(await attempt(t.server.url, await tokenFor('alice'), 'phone', opened)).toBe('connected')
    expect(await admin().delete('/admin/users/alice/devices/phone/revoke')).toMatchObject({ status: 404 })
    expect(await admin().post('/admin/users/alice/devices/nobody/disconnect')).toMatchObject({ status: 404 })
  })

  it('users: paged list with sizes and activity, a summary, the document as JSON, compaction', async () => {
    await t.start()
    const users = ['ann', 'bea', 'cid']
    for (const u of users) {
      const h = new HttpSync(t.server.url, await tokenFor(u), 'worker')
      await h.send([changeOf('create', `${u}-1`, { content: 'x' }), changeOf('create', `${u}-2`, { content: 'y' })])
    }
    const first = await admin().get<{ users: { userId: string }[]; cursor: string | null }>('/admin/users?limit=2')
    const second = await admin().get<{ users: { userId: string }[]; cursor: string | null }>(`/admin/users?limit=2&cursor=${String(first.body.cursor)}`)
    expect([...first.body.users, ...second.body.users].map((u) => u.userId).sort()).toEqual(users)
    expect(second.body.cursor).toBeNull()
    expect(first.body.users[0]).toMatchObject({ bytes: expect.any(Number), entityCounts: { clip: 2 }, devicesConnected: 0, lastActivityAt: expect.any(Number) })

    expect((await admin().get('/admin/users/ann')).body).toMatchObject({ userId: 'ann', entityCounts: { clip: 2 } })
    expect(await admin().get('/admin/users/nobody')).toMatchObject({ status: 404, body: errorBody('NOT_FOUND') })
    expect((await admin().get('/admin/users/ann/document')).body).toMatchObject({ clips: { 'ann-1': { content: 'x' }, 'ann-2': { content: 'y' } }, folders: {} })
    const compacted = await admin().post('/admin/users/ann/compact')
    expect(compacted).toMatchObject({ status: 200, body: { bytesBefore: expect.any(Number), bytesAfter: expect.any(Number) } })
    expect(compacted.body.bytesAfter).toBeLessThanOrEqual(compacted.body.bytesBefore as number)
  })

  it('erase closes the sockets and leaves no key of the user in the store', async () => {
    const { y } = await aliceWithClips()
    await takeSnapshot()
    await admin().post('/admin/users/alice/devices/web/revoke')
    const bob = new HttpSync(t.server.url, await tokenFor('bob'), 'worker')
    await bob.send([changeOf('create', 'b1', { content: 'bob' })])
    const closed = new Promise((resolve) => y.socket.once('disconnect', resolve))
    expect((await admin().delete('/admin/users/alice')).status).toBe(204)
    await closed
    expect(await admin().get('/admin/users/alice')).toMatchObject({ status: 404 })
    const { dataDir } = t.server.config
    await t.server.stop()
    const store = await openStore(dataDir)
    const owners = new Set<string | undefined>()
    for (const key of await store.keys().all()) owners.add(docIdOfKey(key))
    await store.close()
    expect([...owners]).toEqual(['bob'])
  })

  it('every admin route wants the token; bad input is 400, unknown ids 404, a body over the limit 413', async () => {
    await t.start(undefined, { maxMessageBytes: 4096 })
    await new HttpSync(t.server.url, await tokenFor('alice'), 'w').send([changeOf('create', 'c1', { content: 'x' })])
    const routes: [string, string][] = [
      ['GET', '/admin/users'],
      ['GET', '/admin/users/alice'],
      ['GET', '/admin/users/alice/document'],
      ['POST', '/admin/users/alice/snapshots'],
      ['GET', '/admin/users/alice/snapshots'],
      ['GET', '/admin/users/alice/snapshots/x'],
      ['GET', '/admin/users/alice/snapshots/x/export'],
      ['POST', '/admin/users/alice/snapshots/import'],
      ['DELETE', '/admin/users/alice/snapshots/x'],
      ['POST', '/admin/users/alice/restore'],
      ['GET', '/admin/users/alice/trash'],
      ['POST', '/admin/users/alice/trash/restore'],
      ['GET', '/admin/users/alice/devices'],
      ['POST', '/admin/users/alice/devices/w/disconnect'],
      ['POST', '/admin/users/alice/devices/w/revoke'],
      ['DELETE', '/admin/users/alice/devices/w/revoke'],
      ['POST', '/admin/users/alice/compact'],
      ['DELETE', '/admin/users/alice'],
    ]
    for (const token of [undefined, 'wrong-token-wrong-token', await tokenFor('alice')]) {
      const client = new AdminClient(t.server.url, token)
      for (const [method, path] of routes) expect(await client.request(method, path), `${method} ${path}`).toMatchObject({ status: 401, body: errorBody('UNAUTHORIZED') })
    }
    expect(await admin().get('/admin/users?limit=0')).toMatchObject({ status: 400, body: errorBody('INVALID_PAYLOAD') })
    expect(await admin().post('/admin/users/alice/restore', {})).toMatchObject({ status: 400, body: errorBody('INVALID_PAYLOAD') })
    expect(await admin().post('/admin/users/alice/restore', { snapshotId: 'x', at: 1 })).toMatchObject({ status: 400 })
    expect(await admin().post('/admin/users/alice/trash/restore', { entityType: 'gadget', entityId: 'c1' })).toMatchObject({ status: 400 })
    expect(await admin().post('/admin/users/alice/devices/bad%20id/revoke')).toMatchObject({ status: 400 })
    expect(await admin().get('/admin/users/alice/snapshots/nope')).toMatchObject({ status: 404, body: errorBody('NOT_FOUND') })
    expect(await admin().get('/admin/users/nobody/snapshots')).toMatchObject({ status: 404 })
    expect(await admin().post('/admin/users/alice/restore', { snapshotId: 'nope' })).toMatchObject({ status: 404 })
    const big = await admin().request('POST', '/admin/users/alice/snapshots/import', new Uint8Array(8192), 'application/octet-stream')
    expect(big).toMatchObject({ status: 413, body: errorBody('PAYLOAD_TOO_LARGE') })
    expect((await admin().get<{ snapshots: unknown[] }>('/admin/users/alice/snapshots')).body.snapshots).toEqual([])
  })

  it('scheduled snapshots: a round snapshots only users changed since their newest snapshot, spread over the interval', async () => {
    await t.start()
    for (const u of ['ann', 'bea']) await new HttpSync(t.server.url, await tokenFor(u), 'w').send([changeOf('create', `${u}-1`, { content: 'x' })])
    const schedule = t.server.services.snapshots
    const first = await schedule.runRound(Date.now(), 0)
    expect(first.taken.sort()).toEqual(['ann', 'bea'])
    expect((await schedule.runRound(Date.now(), 0)).taken).toEqual([])
    await new HttpSync(t.server.url, await tokenFor('bea'), 'w').send([changeOf('update', 'bea-1', { title: 'changed' }, 1)])
    const third = await schedule.runRound(Date.now(), 60_000)
    expect(third).toMatchObject({ taken: ['bea'], gapMs: 0 })
    const bea = await new AdminClient(t.server.url, t.server.config.adminToken).get<{ snapshots: SnapshotMeta[] }>('/admin/users/bea/snapshots')
    expect(bea.body.snapshots.map((s) => s.reason)).toEqual(['scheduled', 'scheduled'])
    expect(bea.body.snapshots[0]?.entityCounts.clip).toBe(1)
    // Two users due in one round are an interval apart: half of it each.
    for (const u of ['ann', 'bea']) await new HttpSync(t.server.url, await tokenFor(u), 'w').send([changeOf('update', `${u}-1`, { title: 'again' }, 2)])
    expect((await schedule.runRound(Date.now(), 2)).gapMs).toBe(1)
  })

  it('retention keeps the newest scheduled snapshot of each of the last hours and days, and every other kind', () => {
    const now = Date.UTC(2026, 11, 4, 12, 30)
    const meta = (hoursAgo: number, reason: SnapshotMeta['reason'] = 'scheduled'): SnapshotMeta => ({
      id: `${reason}-${hoursAgo}`,
      userId: 'u',
      takenAt: now - hoursAgo * 3600_000,
      bytes: 1,
      entityCounts: { clip: 0, folder: 0, set: 0, tag: 0, template: 0, setting: 0 },
      reason,
      clock: 0,
    })
    // Two an hour for three days, plus manual ones.
    const all = [...Array.from({ length: 144 }, (_, i) => meta(i / 2)), meta(100, 'manual'), meta(0.1, 'before-restore')]
    const expired = new Set(expiredSnapshots(all, { hours: 24, days: 30 }, now).map((s) => s.id))
    const kept = all.filter((s) => !expired.has(s.id))
    expect(kept.filter((s) => s.reason !== 'scheduled').length).toBe(2)
    // The newest of each of the last 24 hours (the current one included): 24; of the days, Dec 4 and 3 are
    // among those already, Dec 2 and Dec 1 add their 23:30 ones.
    const scheduledKept = kept.filter((s) => s.reason === 'scheduled').map((s) => (now - s.takenAt) / 3600_000)
    expect(scheduledKept).toEqual([...Array.from({ length: 24 }, (_, i) => i), 37, 61])
    expect(expiredSnapshots(all, { hours: 0, days: 0 }, now)).toHaveLength(144)
    expect(parseRetention('24h,30d')).toEqual({ hours: 24, days: 30 })
    expect(parseRetention('7d')).toEqual({ hours: 0, days: 7 })
    expect(parseRetention('often')).toBeUndefined()
  })
})
