import { isDeepStrictEqual } from 'node:util'
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import type { SyncConflict } from '../src/types/sync.js'
import { conflictLog, requestStatus, resolveConflict, sidesOf, type ResolutionPayload } from './helpers/conflicts.js'
import { snapshot, waitFor, type YjsDevice } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { JsonDevice } from './helpers/json-device.js'
import { tokenFor } from './helpers/server.js'

/** One `manual` field of schema v1 (protocol §3), with values to write to it. */
interface ManualCase {
  type: 'clip' | 'folder' | 'setting'
  collection: string
  id: string
  field: string
  base: Record<string, unknown>
  first: unknown
  second: unknown
  /** Equal to `first` as a JSON value, spelt differently where it can be (key order). */
  firstAgain: unknown
  /** Other (lww) fields sent in the same change as the conflicting write. */
  rest: Record<string, unknown>
}

const MANUAL: ManualCase[] = [
  {
    type: 'clip',
    collection: 'clips',
    id: 'c1',
    field: 'content',
    base: { content: 'v0', contentType: 'text', title: 't0' },
    first: 'from A',
    second: 'from B',
    firstAgain: 'from A',
    rest: { title: 'title from B', pinned: true },
  },
  {
    type: 'clip',
    collection: 'clips',
    id: 'c1',
    field: 'folderId',
    base: { content: 'v0', folderId: null },
    first: 'folder-a',
    second: 'folder-b',
    firstAgain: 'folder-a',
    rest: { favorite: true },
  },
  {
    type: 'folder',
    collection: 'folders',
    id: 'f1',
    field: 'parentId',
    base: { name: 'Work', parentId: 'root' },
    first: 'parent-a',
    second: null,
    firstAgain: 'parent-a',
    rest: { name: 'Renamed by B', order: 3 },
  },
  {
    type: 'setting',
    collection: 'settings',
    id: 'theme',
    field: 'value',
    base: { value: { mode: 'light' } },
    first: { mode: 'dark', sizes: [1, 2] },
    second: { mode: 'sepia' },
    firstAgain: { sizes: [1, 2], mode: 'dark' },
    rest: {},
  },
]

const entityOf = (y: YjsDevice, collection: string, id: string): Y.Map<unknown> => {
  const map = y.doc.getMap(collection).get(id)
  if (!(map instanceof Y.Map)) throw new Error(`${collection}/${id} is not on ${y.deviceId}`)
  return map as Y.Map<unknown>
}

/**
 * Every log ends up holding exactly `count` conflicts. A `sync:status` round
 * trip on each socket first: whatever the server emitted before it has arrived.
 */
async function expectConflictCounts(logs: [socket: JsonDevice | YjsDevice, log: SyncConflict[]][], count: number): Promise<void> {
  for (const [device, log] of logs) {
    await waitFor(() => log.length >= count, `${count} sync:conflict on ${device.deviceId}`)
    await requestStatus(device.socket, device.deviceId)
    expect(log, `sync:conflict events on ${device.deviceId}`).toHaveLength(count)
  }
}

/** Each device in turn reconnects and sends what it wrote offline, the next one once the server has acked it. */
async function reconnectInTurn(...devices: YjsDevice[]): Promise<void> {
  for (const y of devices) {
    await y.reconnect()
    await y.flushed()
  }
}

/**
 * y1 and y2 both wrote clip c1's content offline, y1's 'A' arriving first: `j` hears exactly one
 * conflict, on that field, with y2's side as `clientVersion`; the devices converge on 'A'.
 */
async function expectFirstContentKept(j: JsonDevice, y1: YjsDevice, y2: YjsDevice, clientVersion: Record<string, unknown>): Promise<void> {
  await expectConflictCounts([[j, j.conflicts]], 1)
  expect(j.conflicts[0]).toMatchObject({ entityId: 'c1', field: 'content', serverVersion: { value: 'A', deviceId: 'y1' }, clientVersion })
  await waitFor(() => isDeepStrictEqual(snapshot(y1.doc), snapshot(y2.doc)), 'the devices converge')
  expect(clipOf(y2).get('content')).toBe('A')
}

describe('conflicts on manual fields (protocol §6)', () => {
  const t = useServer()

  describe.each(MANUAL)('manual field $field of $type', (m) => {
    it('JSON path: a write from an older version is a conflict; the first value stays, the rest of the change applies, every socket hears it', async () => {
      await t.start()
      const a = await t.jsonDevice('alice', 'web-a')
      await a.write('create', { entityType: m.type, entityId: m.id, data: m.base })
      const b = await t.jsonDevice('alice', 'web-b')
      expect(b.entity(m.type, m.id)?.version).toBe(1)
      const y = await t.device('alice', 'phone')
      const yConflicts = conflictLog(y.socket)
      // Connected but never synced: still one of the user's sockets.
      const idle = t.track(new JsonDevice(t.server.url, await tokenFor('alice'), 'idle'))
      await idle.open()
      const bob = await t.jsonDevice('bob', 'web')

      const first = await a.write('update', { entityType: m.type, entityId: m.id, data: { [m.field]: m.first }, version: 1 })
      expect(first).toMatchObject({ version: 2, conflicts: [] })
      const second = await b.write('update', {
        entityType: m.type,
        entityId: m.id,
        data: { [m.field]: m.second, ...m.rest },
        version: 1,
      })
      const restApplies = Object.keys(m.rest).length > 0
      expect(second).toMatchObject({ entityId: m.id, version: restApplies ? 3 : 2 })
      expect(second.conflicts).toEqual([expect.any(String)])
      const expected: SyncConflict = {
        id: (second.conflicts as string[])[0] ?? '',
        userId: 'alice',
        entityType: m.type as SyncConflict['entityType'],
        entityId: m.id,
        field: m.field,
        serverVersion: { value: m.first, version: 2, deviceId: 'web-a', timestamp: first.serverTimestamp as number },
        clientVersion: { value: m.second, version: 1, deviceId: 'web-b', timestamp: expect.any(Number) },
        timestamp: expect.any(Number),
        resolved: false,
      }
      await expectConflictCounts([[a, a.conflicts], [b, b.conflicts], [y, yConflicts], [idle, idle.conflicts]], 1)
      for (const log of [a.conflicts, b.conflicts, yConflicts, idle.conflicts]) expect(log[0]).toEqual(expected)
      await requestStatus(bob.socket, 'web')
      expect(bob.conflicts).toEqual([])
      expect((await requestStatus(idle.socket, 'idle')).conflicts).toEqual([expected.id])

      // The document keeps the first value; the rest of the second change is in it.
      const fresh = await t.device('alice', 'fresh')
      expect(entityOf(fresh, m.collection, m.id).toJSON()).toEqual({ ...m.base, [m.field]: m.first, ...m.rest })
      await waitFor(() => isDeepStrictEqual(snapshot(y.doc), snapshot(fresh.doc)), 'live Yjs device holds the server state')
      const j = await t.jsonDevice('alice', 'web-c')
      expect(j.entity(m.type, m.id)).toMatchObject({ version: restApplies ? 3 : 2, data: { ...m.base, [m.field]: m.first, ...m.rest } })
      if (restApplies) {
        await waitFor(() => a.entity(m.type, m.id)?.version === 3, 'the rest of the change on web-a')
        expect(a.entity(m.type, m.id)?.data).toEqual({ ...m.base, [m.field]: m.first, ...m.rest })
      }
    })

    it('JSON path: the same value from an older version, or any value from the current version, is no conflict', async () => {
      await t.start()
      const a = await t.jsonDevice('alice', 'web-a')
      await a.write('create', { entityType: m.type, entityId: m.id, data: m.base })
      const b = await t.jsonDevice('alice', 'web-b')
      await a.write('update', { entityType: m.type, entityId: m.id, data: { [m.field]: m.first }, version: 1 })

      const same = await b.write('update', { entityType: m.type, entityId: m.id, data: { [m.field]: m.firstAgain }, version: 1 })
      expect(same).toMatchObject({ version: 2, conflicts: [] })
      await waitFor(() => b.entity(m.type, m.id)?.version === 2, 'web-b sees version 2')
      const current = await b.write('update', { entityType: m.type, entityId: m.id, data: { [m.field]: m.second }, version: 2 })
      expect(current).toMatchObject({ version: 3, conflicts: [] })

      expect((await requestStatus(b.socket, 'web-b')).conflicts).toEqual([])
      await expectConflictCounts([[a, a.conflicts], [b, b.conflicts]], 0)
      const j = await t.jsonDevice('alice', 'web-c')
      expect(j.entity(m.type, m.id)?.data[m.field]).toEqual(m.second)
    })

    it.each([
      { order: 'the later device has the higher Yjs client id, so Yjs alone would let it win', firstId: 1001, secondId: 2002 },
      { order: 'the later device has the lower Yjs client id', firstId: 2002, secondId: 1001 },
    ])('Yjs path: two offline writes; the first to arrive stays, the second is a conflict ($order)', async ({ firstId, secondId }) => {
      await t.start()
      const j = await t.jsonDevice('alice', 'web')
      await j.write('create', { entityType: m.type, entityId: m.id, data: m.base })
      // Devices that encode their update before applying the server's diff (protocol §4), so that
      // the overwritten value is still in it (see the next test for devices that do not).
      const y1 = await t.device('alice', 'y1')
      const y2 = await t.device('alice', 'y2')
      const log1 = conflictLog(y1.socket)
      const log2 = conflictLog(y2.socket)
      y1.doc.clientID = firstId
      y2.doc.clientID = secondId
      y1.goOffline()
      y2.goOffline()
      entityOf(y1, m.collection, m.id).set(m.field, m.first)
      entityOf(y2, m.collection, m.id).set(m.field, m.second)

      await reconnectInTurn(y1, y2) // a conflict does not fail the update

      await expectConflictCounts([[j, j.conflicts], [y1, log1], [y2, log2]], 1)
      const conflict = log2[0]
      expect(conflict).toEqual({
        id: expect.any(String),
        userId: 'alice',
        entityType: m.type,
        entityId: m.id,
        field: m.field,
        serverVersion: { value: m.first, version: 2, deviceId: 'y1', timestamp: expect.any(Number) },
        clientVersion: { value: m.second, version: expect.any(Number), deviceId: 'y2', timestamp: expect.any(Number) },
        timestamp: expect.any(Number),
        resolved: false,
      })
      expect(log1[0]).toEqual(conflict)
      expect(j.conflicts[0]).toEqual(conflict)
      expect((await requestStatus(j.socket, 'web')).conflicts).toEqual([conflict?.id])

      // Both devices, a fresh one and the JSON device converge on the kept value.
      await waitFor(
        () => isDeepStrictEqual(snapshot(y1.doc), snapshot(y2.doc)) && isDeepStrictEqual(entityOf(y2, m.collection, m.id).get(m.field), m.first),
        'both Yjs devices on the kept value',
      )
      const fresh = await t.device('alice', 'fresh')
      expect(snapshot(fresh.doc)).toEqual(snapshot(y1.doc))
      expect(entityOf(fresh, m.collection, m.id).get(m.field)).toEqual(m.first)
      await waitFor(() => j.entity(m.type, m.id)?.version === 3, 'the second update on the JSON device')
      expect(j.entity(m.type, m.id)?.data[m.field]).toEqual(m.first)
      if (secondId > firstId) {
        // Yjs ordered the later write last: the server wrote the kept value back, to every Yjs device.
        expect(y2.received.some((r) => r.deviceId === 'server')).toBe(true)
        expect(y1.received.some((r) => r.deviceId === 'server')).toBe(true)
      }
    })
  })

  it.each([
    { how: 'encodes first', applyBeforeEncode: false, order: 'its write loses by Yjs order', y2Id: 1001, client: { value: 'B' } },
    { how: 'encodes first', applyBeforeEncode: false, order: 'its write wins by Yjs order', y2Id: 3003, client: { value: 'B' } },
    { how: 'applies first', applyBeforeEncode: true, order: 'its write loses by Yjs order', y2Id: 1001, client: { collected: true } },
    { how: 'applies first', applyBeforeEncode: true, order: 'its write wins by Yjs order', y2Id: 3003, client: { value: 'B' } },
  ])('Yjs path: the later device $how and $order: the conflict keeps its value or marks it collected, and the devices converge', async ({ applyBeforeEncode, y2Id, client }) => {
    await t.start()
    const j = await t.jsonDevice('alice', 'web')
    await j.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0' } })
    const y1 = await t.device('alice', 'y1')
    const y2 = await t.device('alice', 'y2', { applyBeforeEncode })
    y1.doc.clientID = 2002
    // Yjs orders concurrent writes to a map key by client id, the higher one last (it wins).
    y2.doc.clientID = y2Id
    y1.goOffline()
    y2.goOffline()
    clipOf(y1).set('content', 'A')
    clipOf(y2).set('content', 'B')
    await reconnectInTurn(y1, y2)
    // Applied first, a losing write is deleted and garbage-collected on y2 before it is encoded: its
    // 'B' never reaches the server, and the record says so instead of holding an undefined value.
    await expectFirstContentKept(j, y1, y2, { deviceId: 'y2', ...client })
    const clientVersion = j.conflicts[0]?.clientVersion as Record<string, unknown>
    expect(Object.keys(clientVersion).sort()).toEqual([...Object.keys(client), 'deviceId', 'timestamp', 'version'].sort())
    if ('collected' in client) {
      const reply = await resolveConflict(j.socket, { conflictId: j.conflicts[0]?.id ?? '', winningVersion: 'client' })
      expect(reply).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD', message: expect.stringContaining('collected') } })
      expect((await requestStatus(j.socket, 'web')).conflicts).toEqual([j.conflicts[0]?.id])
    }
  })

  it('JSON path: conflicts are per field; a write from an older version to a field nobody changed since is no conflict', async () => {
    await t.start()
    const a = await t.jsonDevice('alice', 'web-a')
    await a.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0', folderId: null, title: 't0' } })
    const b = await t.jsonDevice('alice', 'web-b')
    const c = await t.jsonDevice('alice', 'web-c')
    await a.write('update', { entityType: 'clip', entityId: 'c1', data: { title: 't1', folderId: 'fa' }, version: 1 })

    const contentOnly = await b.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from B' }, version: 1 })
    expect(contentOnly).toMatchObject({ version: 3, conflicts: [] })
    const folder = await c.write('update', { entityType: 'clip', entityId: 'c1', data: { folderId: 'fc', content: 'from C' }, version: 1 })
    expect(folder).toMatchObject({ version: 3 })
    expect(folder.conflicts).toHaveLength(2)
    await expectConflictCounts([[a, a.conflicts]], 2)
    expect(a.conflicts.map((x) => [x.field, sidesOf(x).server.value, sidesOf(x).client.value]).sort()).toEqual([
      ['content', 'from B', 'from C'],
      ['folderId', 'fa', 'fc'],
    ])
    const fresh = await t.jsonDevice('alice', 'web-d')
    expect(fresh.entity('clip', 'c1')?.data).toEqual({ content: 'from B', folderId: 'fa', title: 't1' })
  })

  it('sync:conflicts acknowledges the open conflicts, whole and oldest first, to a device that was away; resolved ones leave the list', async () => {
    await t.start()
    const a = await t.jsonDevice('alice', 'web-a')
    await a.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0', folderId: null } })
    await a.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from A', folderId: 'fa' }, version: 1 })
    await a.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'stale' }, version: 1 })
    await a.write('update', { entityType: 'clip', entityId: 'c1', data: { folderId: 'stale' }, version: 1 })
    const late = await t.jsonDevice('alice', 'web-late')
    const other = await t.jsonDevice('bob', 'web-bob')
    const list = async (device: JsonDevice, payload?: unknown) =>
      (await (payload === undefined ? device.socket.emitWithAck('sync:conflicts') : device.socket.emitWithAck('sync:conflicts', payload))) as
        | { ok: true; conflicts: SyncConflict[] }
        | { ok: false; error: { code: string } }
    const open = await list(late, { requestId: 'r1' })
    expect(open).toMatchObject({ ok: true, conflicts: [{ field: 'content', resolved: false }, { field: 'folderId', resolved: false }] })
    const [content] = (open as { conflicts: SyncConflict[] }).conflicts
    expect(sidesOf(content!)).toMatchObject({ server: { value: 'from A' }, client: { value: 'stale' } })
    // Oldest first (two writes may land in the same millisecond: then in the order they were made, as the fields above say).
    expect(content!.timestamp).toBeLessThanOrEqual((open as { conflicts: SyncConflict[] }).conflicts[1]!.timestamp)
    expect(await list(other)).toEqual({ ok: true, conflicts: [] })
    expect(await list(late, 'nope')).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } })
    await resolveConflict(late.socket, { conflictId: content!.id, winningVersion: 'server' })
    expect(await list(late, null)).toMatchObject({ ok: true, conflicts: [{ field: 'folderId' }] })
  })

  it('JSON path: lww, text and list fields never conflict, whatever version a write comes from', async () => {
    await t.start()
    const a = await t.jsonDevice('alice', 'web-a')
    await a.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0', title: 't0', pinned: false, tagIds: ['x'] } })
    await a.write('create', { entityType: 'template', entityId: 'tp', data: { name: 'sig', body: 'Hello' } })
    await a.write('create', { entityType: 'tag', entityId: 'tg', data: { name: 'work', color: 'red' } })
    const b = await t.jsonDevice('alice', 'web-b')
    const y = await t.device('alice', 'phone')
    const yLog = conflictLog(y.socket)
    await a.write('update', { entityType: 'clip', entityId: 'c1', data: { title: 'from A', pinned: true, tagIds: ['x', 'a'] }, version: 1 })
    await a.write('update', { entityType: 'template', entityId: 'tp', data: { name: 'A', body: 'Hello A' }, version: 1 })
    await a.write('update', { entityType: 'tag', entityId: 'tg', data: { color: 'blue' }, version: 1 })

    const writes = [
      await b.write('update', { entityType: 'clip', entityId: 'c1', data: { title: 'from B', pinned: false, tagIds: ['b'] }, version: 1 }),
      await b.write('update', { entityType: 'template', entityId: 'tp', data: { name: 'B', body: 'Hello B' }, version: 0 }),
      await b.write('update', { entityType: 'tag', entityId: 'tg', data: { color: 'green' }, version: 1 }),
    ]
    for (const w of writes) expect(w).toMatchObject({ version: 3, conflicts: [] })
    await expectConflictCounts([[a, a.conflicts], [b, b.conflicts], [y, yLog]], 0)
    expect((await requestStatus(y.socket, 'phone')).conflicts).toEqual([])
    const j = await t.jsonDevice('alice', 'web-c')
    expect(j.entity('clip', 'c1')?.data).toEqual({ content: 'v0', title: 'from B', pinned: false, tagIds: ['b'] })
    expect(j.entity('template', 'tp')?.data).toEqual({ name: 'B', body: 'Hello B' })
    expect(j.entity('tag', 'tg')?.data).toEqual({ name: 'work', color: 'green' })
  })

  it('Yjs path: concurrent lww, text and list edits from two offline devices (and a stale JSON write) merge without a conflict', async () => {
    await t.start()
    const j = await t.jsonDevice('alice', 'web')
    await j.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0', title: 't0', pinned: false, tagIds: ['a'] } })
    await j.write('create', { entityType: 'template', entityId: 'tp', data: { name: 'sig', body: 'Hello world' } })
    await j.write('create', { entityType: 'set', entityId: 's1', data: { name: 'set', clipIds: ['c1'] } })
    const y1 = await t.device('alice', 'y1')
    const y2 = await t.device('alice', 'y2')
    const log1 = conflictLog(y1.socket)
    const log2 = conflictLog(y2.socket)
    y1.goOffline()
    y2.goOffline()
    const edit = (y: YjsDevice, n: string) => {
      const clip = entityOf(y, 'clips', 'c1')
      clip.set('title', `title ${n}`)
      ;(clip.get('tagIds') as Y.Array<string>).push([n])
      ;(entityOf(y, 'sets', 's1').get('clipIds') as Y.Array<string>).push([`clip-${n}`])
    }
    edit(y1, 'y1')
    clipOf(y1).set('pinned', true)
    ;(entityOf(y1, 'templates', 'tp').get('body') as Y.Text).insert(0, 'Dear ')
    edit(y2, 'y2')
    clipOf(y2).set('favorite', true)
    const body2 = entityOf(y2, 'templates', 'tp').get('body') as Y.Text
    body2.insert(body2.length, '!')
    await j.write('update', { entityType: 'clip', entityId: 'c1', data: { source: 'web', title: 'title web' }, version: 1 })

    await reconnectInTurn(y1, y2)
    await waitFor(() => isDeepStrictEqual(snapshot(y1.doc), snapshot(y2.doc)), 'the two devices converge')
    const fresh = await t.device('alice', 'fresh')
    expect(snapshot(fresh.doc)).toEqual(snapshot(y1.doc))
    const clip = clipOf(fresh).toJSON()
    expect(clip).toMatchObject({ content: 'v0', pinned: true, favorite: true, source: 'web' })
    expect(['title y1', 'title y2', 'title web']).toContain(clip.title)
    expect([...(clip.tagIds as string[])].sort()).toEqual(['a', 'y1', 'y2'])
    expect([...(entityOf(fresh, 'sets', 's1').toJSON().clipIds as string[])].sort()).toEqual(['c1', 'clip-y1', 'clip-y2'])
    expect(entityOf(fresh, 'templates', 'tp').toJSON().body).toBe('Dear Hello world!')
    await expectConflictCounts([[j, j.conflicts], [y1, log1], [y2, log2]], 0)
    expect((await requestStatus(j.socket, 'web')).conflicts).toEqual([])
  })

  it('mixed paths: an offline Yjs write after a JSON write, and a JSON write from an older version after a Yjs write, are conflicts', async () => {
    await t.start()
    const j = await t.jsonDevice('alice', 'web')
    await j.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0' } })
    const stale = await t.jsonDevice('alice', 'web-stale') // has seen version 1 only, and writes from it
    const y = await t.device('alice', 'phone')
    const yLog = conflictLog(y.socket)

    y.goOffline()
    clipOf(y).set('content', 'from phone')
    expect(await j.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from web' }, version: 1 })).toMatchObject({
      version: 2,
      conflicts: [],
    })
    await y.reconnect()
    await y.flushed()
    await expectConflictCounts([[j, j.conflicts], [y, yLog]], 1)
    expect(yLog[0]).toMatchObject({
      field: 'content',
      serverVersion: { value: 'from web', version: 2, deviceId: 'web' },
      clientVersion: { value: 'from phone', deviceId: 'phone' },
    })
    await waitFor(() => clipOf(y).get('content') === 'from web', 'the phone back on the kept value')

    // Online now, the phone writes on top of the current value: no conflict.
    clipOf(y).set('content', 'phone again')
    await y.flushed()
    await waitFor(() => j.entity('clip', 'c1')?.data.content === 'phone again', 'the phone\'s write on the web')
    const late = await stale.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from stale web' }, version: 1 })
    expect(late.conflicts).toHaveLength(1)
    await expectConflictCounts([[j, j.conflicts], [y, yLog]], 2)
    expect(yLog[1]).toMatchObject({
      id: (late.conflicts as string[])[0],
      serverVersion: { value: 'phone again', deviceId: 'phone' },
      clientVersion: { value: 'from stale web', version: 1, deviceId: 'web-stale' },
    })
    expect(clipOf(await t.device('alice', 'fresh')).get('content')).toBe('phone again')
  })

  it('Yjs path: a device that wrote a field several times offline conflicts with its last value, and not at all when that is the kept value', async () => {
    await t.start()
    const j = await t.jsonDevice('alice', 'web')
    await j.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0' } })
    await j.write('create', { entityType: 'clip', entityId: 'c2', data: { content: 'w0' } })
    const y1 = await t.device('alice', 'y1')
    const y2 = await t.device('alice', 'y2')
    y1.goOffline()
    y2.goOffline()
    clipOf(y1).set('content', 'A')
    clipOf(y1, 'c2').set('content', 'A2')
    clipOf(y2).set('content', 'B1')
    clipOf(y2).set('content', 'B2')
    clipOf(y2, 'c2').set('content', 'B')
    clipOf(y2, 'c2').set('content', 'A2') // back to what the other device wrote: nothing of it is lost

    await reconnectInTurn(y1, y2)
    await expectFirstContentKept(j, y1, y2, { value: 'B2', deviceId: 'y2' })
    expect(clipOf(y2, 'c2').get('content')).toBe('A2')
  })

  it('a Yjs conflict that keeps the value does not make a JSON write from a version that saw that value a conflict', async () => {
    await t.start()
    const j = await t.jsonDevice('alice', 'web')
    await j.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0' } })
    const old = await t.jsonDevice('alice', 'web-old') // saw version 1
    const y = await t.device('alice', 'phone')
    y.goOffline()
    clipOf(y).set('content', 'from phone')
    await j.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'kept' }, version: 1 })
    const seen = await t.jsonDevice('alice', 'web-seen') // saw version 2: 'kept'
    expect(seen.entity('clip', 'c1')).toMatchObject({ version: 2, data: { content: 'kept' } })
    await y.reconnect()
    await y.flushed()
    await expectConflictCounts([[j, j.conflicts]], 1)

    // The field still holds what web-seen saw: its write is an ordinary update.
    const fromSeen = await seen.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from seen' }, version: 2 })
    expect(fromSeen).toMatchObject({ conflicts: [] })
    // web-old never saw 'kept' nor 'from seen': a conflict.
    const fromOld = await old.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from old' }, version: 1 })
    expect(fromOld.conflicts).toHaveLength(1)
    await expectConflictCounts([[j, j.conflicts]], 2)
    expect(j.conflicts[1]).toMatchObject({ serverVersion: { value: 'from seen', deviceId: 'web-seen' }, clientVersion: { value: 'from old' } })
    await waitFor(() => clipOf(y).get('content') === 'from seen', 'the phone on the current value')
  })

  describe('resolution: sync:conflict from a client', () => {
    /** web-a and web-b both write clip c1's content from version 1; web-b's write is the conflict. */
    async function contentConflict() {
      await t.start()
      const a = await t.jsonDevice('alice', 'web-a')
      await a.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0', title: 't0' } })
      const b = await t.jsonDevice('alice', 'web-b')
      const y = await t.device('alice', 'phone')
      const yLog = conflictLog(y.socket)
      await a.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from A' }, version: 1 })
      const ack = await b.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from B' }, version: 1 })
      expect(ack).toMatchObject({ version: 2, conflicts: [expect.any(String)] })
      await expectConflictCounts([[a, a.conflicts], [b, b.conflicts], [y, yLog]], 1)
      const conflict = yLog[0] as SyncConflict
      return { a, b, y, yLog, conflict }
    }

    it.each([
      { winningVersion: 'server', resolver: 'web-b', expected: 'from A' },
      { winningVersion: 'client', resolver: 'phone', expected: 'from B' },
      { winningVersion: 'merged', resolver: 'web-a', mergedData: { content: 'from A and B' }, expected: 'from A and B' },
    ] as const)(
      '$winningVersion (by $resolver): the value is written as a new version, broadcast to both modes, the resolved conflict reaches every socket and leaves the status',
      async ({ winningVersion, resolver, mergedData, expected }) => {
        const { a, b, y, yLog, conflict } = await contentConflict()
        const y2 = await t.device('alice', 'tablet')
        const y2Log = conflictLog(y2.socket)
        const devices = { 'web-a': a, 'web-b': b, phone: y }
        const by = devices[resolver]
        const payload: ResolutionPayload = { conflictId: conflict.id, winningVersion, ...(mergedData ? { mergedData } : {}) }
        const reply = await resolveConflict(by.socket, payload)
        expect(reply).toEqual({ ok: true, conflictId: conflict.id, entityId: 'c1', version: 3, serverTimestamp: expect.any(Number) })

        const resolved = { ...conflict, resolved: true, winningVersion, ...(winningVersion === 'merged' ? { mergedData: { content: mergedData?.content } } : {}), resolvedAt: expect.any(Number) }
        await expectConflictCounts([[a, a.conflicts], [b, b.conflicts], [y, yLog]], 2)
        await expectConflictCounts([[y2, y2Log]], 1)
        for (const log of [a.conflicts, b.conflicts, yLog]) expect(log[1]).toEqual(resolved)
        expect(y2Log[0]).toEqual(resolved)

        // Broadcast as a change: to the other JSON devices as version 3, to every Yjs device as an update.
        for (const j of [a, b].filter((d) => d.deviceId !== resolver)) {
          await waitFor(() => j.entity('clip', 'c1')?.version === 3, `version 3 on ${j.deviceId}`)
          expect(j.entity('clip', 'c1')?.data).toEqual({ content: expected, title: 't0' })
          expect(j.live.filter((c) => c.version === 3)).toEqual([expect.objectContaining({ deviceId: resolver, operationType: 'update' })])
        }
        for (const yd of [y, y2]) {
          await waitFor(() => clipOf(yd).get('content') === expected, `resolved value on ${yd.deviceId}`)
          expect(yd.received.some((r) => r.deviceId === resolver)).toBe(true)
        }
        for (const d of [a, b, y]) expect((await requestStatus(d.socket, d.deviceId)).conflicts).toEqual([])
        const j = await t.jsonDevice('alice', 'web-c')
        expect(j.entity('clip', 'c1')).toMatchObject({ version: 3, data: { content: expected, title: 't0' } })

        // Resolved once: again, or an id nobody knows, is CONFLICT_NOT_FOUND, and changes nothing.
        for (const conflictId of [conflict.id, 'no-such-conflict']) {
          const again = await resolveConflict(a.socket, { conflictId, winningVersion: 'client' })
          expect(again).toMatchObject({ ok: false, error: { code: 'CONFLICT_NOT_FOUND' } })
        }
        await expectConflictCounts([[a, a.conflicts], [y, yLog]], 2)
        const after = await t.jsonDevice('alice', 'web-d')
        expect(after.entity('clip', 'c1')).toMatchObject({ version: 3, data: { content: expected } })
      },
    )

    it('a refused resolution leaves the conflict open; of two racing resolutions exactly one wins', async () => {
      const { a, b, y, yLog, conflict } = await contentConflict()
      const noData = await resolveConflict(a.socket, { conflictId: conflict.id, winningVersion: 'merged' })
      expect(noData).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } })
      const badValue = await resolveConflict(a.socket, { conflictId: conflict.id, winningVersion: 'merged', mergedData: { content: 42 } })
      expect(badValue).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } })
      expect((await requestStatus(a.socket, 'web-a')).conflicts).toEqual([conflict.id])

      const replies = await Promise.all([
        resolveConflict(a.socket, { conflictId: conflict.id, winningVersion: 'server' }),
        resolveConflict(b.socket, { conflictId: conflict.id, winningVersion: 'client' }),
        resolveConflict(y.socket, { conflictId: conflict.id, winningVersion: 'merged', mergedData: { content: 'merged' } }),
      ])
      expect(replies.filter((r) => r.ok)).toHaveLength(1)
      expect(replies.filter((r) => !r.ok)).toEqual([
        expect.objectContaining({ error: expect.objectContaining({ code: 'CONFLICT_NOT_FOUND' }) }),
        expect.objectContaining({ error: expect.objectContaining({ code: 'CONFLICT_NOT_FOUND' }) }),
      ])
      await expectConflictCounts([[a, a.conflicts], [b, b.conflicts], [y, yLog]], 2)
      const winner = ['server', 'client', 'merged'][replies.findIndex((r) => r.ok)]
      expect(yLog[1]).toMatchObject({ id: conflict.id, resolved: true, winningVersion: winner })
      const j = await t.jsonDevice('alice', 'web-c')
      expect(j.entity('clip', 'c1')).toMatchObject({
        version: 3,
        data: { content: { server: 'from A', client: 'from B', merged: 'merged' }[winner ?? 'server'] },
      })
    })

    it('unresolved conflicts survive a restart and can be resolved after it; resolved ones stay resolved', async () => {
      const server = await t.start()
      const a = await t.jsonDevice('alice', 'web-a')
      await a.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0', folderId: null } })
      const b = await t.jsonDevice('alice', 'web-b')
      await a.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from A', folderId: 'fa' }, version: 1 })
      const ack = await b.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from B', folderId: 'fb' }, version: 1 })
      expect(ack.conflicts).toHaveLength(2)
      await expectConflictCounts([[a, a.conflicts]], 2)
      const byField = Object.fromEntries(a.conflicts.map((c) => [c.field, c]))
      const onContent = byField.content as SyncConflict
      const onFolder = byField.folderId as SyncConflict
      expect(await resolveConflict(a.socket, { conflictId: onFolder.id, winningVersion: 'client' })).toMatchObject({ ok: true, version: 3 })

      await t.start(server.config.dataDir)
      const j = await t.jsonDevice('alice', 'web-c')
      const y = await t.device('alice', 'phone')
      const yLog = conflictLog(y.socket)
      expect((await requestStatus(j.socket, 'web-c')).conflicts).toEqual([onContent.id])
      expect(j.entity('clip', 'c1')).toMatchObject({ version: 3, data: { content: 'from A', folderId: 'fb' } })
      expect(await resolveConflict(j.socket, { conflictId: onFolder.id, winningVersion: 'server' })).toMatchObject({
        ok: false,
        error: { code: 'CONFLICT_NOT_FOUND' },
      })
      expect(await resolveConflict(j.socket, { conflictId: onContent.id, winningVersion: 'client' })).toMatchObject({ ok: true, version: 4 })
      await expectConflictCounts([[y, yLog]], 1)
      expect(yLog[0]).toEqual({ ...onContent, resolved: true, winningVersion: 'client', resolvedAt: expect.any(Number) })
      await waitFor(() => clipOf(y).get('content') === 'from B', 'resolved value on the phone')

      await t.start(server.config.dataDir)
      const k = await t.jsonDevice('alice', 'web-d')
      expect((await requestStatus(k.socket, 'web-d')).conflicts).toEqual([])
      expect(k.entity('clip', 'c1')).toMatchObject({ version: 4, data: { content: 'from B', folderId: 'fb' } })
    })
  })

  it.each(['replaces', 'removes'] as const)(
    'a Yjs update that %s an entity map is INVALID_UPDATE and changes nothing, not even its valid edits',
    async (how) => {
      await t.start()
      const j = await t.jsonDevice('alice', 'web')
      await j.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0', title: 't0' } })
      await j.write('create', { entityType: 'clip', entityId: 'c2', data: { content: 'w0' } })
      const y = await t.device('alice', 'phone')
      const other = await t.device('alice', 'tablet')
      const before = snapshot(y.doc)

      // The same edits a device's doc would make, sent as one update.
      const clone = new Y.Doc()
      Y.applyUpdate(clone, Y.encodeStateAsUpdate(y.doc))
      const sv = Y.encodeStateVector(clone)
      clone.transact(() => {
        const clips = clone.getMap<Y.Map<unknown>>('clips')
        clips.get('c2')?.set('title', 'a valid edit in the same update')
        if (how === 'replaces') {
          const replacement = new Y.Map<unknown>()
          replacement.set('content', 'replacement')
          clips.set('c1', replacement)
        } else {
          clips.delete('c1')
        }
      })
      const reply = await y.send(Y.encodeStateAsUpdate(clone, sv))
      expect(reply).toMatchObject({ ok: false, error: { code: 'INVALID_UPDATE' } })
      await waitFor(() => y.errors.length === 1, 'sync:error')
      expect(y.errors[0]).toMatchObject({ code: 'INVALID_UPDATE', event: 'sync:update' })

      const status = await requestStatus(j.socket, 'web')
      expect(status.entityCounts.clip).toBe(2)
      expect(status.conflicts).toEqual([])
      await requestStatus(other.socket, 'tablet')
      expect(other.received).toEqual([])
      expect(j.live).toEqual([])
      const fresh = await t.device('alice', 'fresh')
      expect(snapshot(fresh.doc)).toEqual(before)
      const k = await t.jsonDevice('alice', 'web-2')
      expect(k.entity('clip', 'c1')).toMatchObject({ version: 1, data: { content: 'v0', title: 't0' } })
      expect(k.entity('clip', 'c2')).toMatchObject({ version: 1, data: { content: 'w0' } })
    },
  )

  it('an offline Yjs device that replaced an entity is refused on reconnect; nothing of its update is applied', async () => {
    await t.start()
    const j = await t.jsonDevice('alice', 'web')
    await j.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0' } })
    const y = await t.device('alice', 'phone')
    y.goOffline()
    y.addClip('c1', 'replaced offline')
    y.addClip('c-new', 'new offline')
    await y.reconnect()
    await expect(y.flushed()).rejects.toThrow(/INVALID_UPDATE/)
    const fresh = await t.device('alice', 'fresh')
    expect(clipOf(fresh).toJSON()).toEqual({ content: 'v0' })
    expect(fresh.clips().has('c-new')).toBe(false)
  })
})

function clipOf(y: YjsDevice, id = 'c1'): Y.Map<unknown> {
  return entityOf(y, 'clips', id)
}

describe('conflict records name the field\'s own last change', () => {
  const t = useServer()

  it('serverVersion carries the version, device and time at which the field last changed, not the entity', async () => {
    await t.start()
    const a = await t.jsonDevice('alice', 'dev-a')
    const b = await t.jsonDevice('alice', 'dev-b')
    const c = await t.jsonDevice('alice', 'dev-c')
    await a.write('create', { entityType: 'clip', entityId: 'x', data: { content: 'v1', title: 't' } })
    const contentChange = await a.write('update', { entityType: 'clip', entityId: 'x', data: { content: 'by a' }, version: 1 })
    await c.write('update', { entityType: 'clip', entityId: 'x', data: { title: 'by c' }, version: 2 })
    const stale = await b.write('update', { entityType: 'clip', entityId: 'x', data: { content: 'by b' }, version: 1 })
    expect(stale.conflicts).toHaveLength(1)
    await waitFor(() => b.conflicts.length === 1, 'the conflict event')
    expect(b.conflicts[0]).toMatchObject({
      field: 'content',
      serverVersion: { value: 'by a', version: 2, deviceId: 'dev-a', timestamp: contentChange.serverTimestamp },
      clientVersion: { value: 'by b', version: 1, deviceId: 'dev-b' },
    })
  })
})
