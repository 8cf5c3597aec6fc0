import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'

describe('JSON change records into the document (protocol §5)', () => {
  const t = useServer()

  it('create, partial update and soft delete: acked with versions, stored in the Yjs document', async () => {
    await t.start()
    const j = await t.jsonDevice('alice', 'web')
    const created = await j.write('create', {
      entityType: 'clip',
      entityId: 'c1',
      data: { content: 'hello', contentType: 'text', tagIds: ['a', 'b'], pinned: false, createdAt: 1 },
    })
    expect(created).toEqual({ ok: true, entityId: 'c1', version: 1, serverTimestamp: expect.any(Number), conflicts: [] })

    const updated = await j.write('update', { entityType: 'clip', entityId: 'c1', data: { pinned: true }, version: 1 })
    expect(updated).toMatchObject({ version: 2, conflicts: [] })
    expect(updated.serverTimestamp as number).toBeGreaterThan(created.serverTimestamp as number)

    const y = await t.device('alice', 'phone')
    expect(y.clips().get('c1')?.toJSON()).toEqual({
      content: 'hello',
      contentType: 'text',
      tagIds: ['a', 'b'],
      pinned: true,
      createdAt: 1,
    })
    expect(y.clips().get('c1')?.get('tagIds')).toBeInstanceOf(Y.Array)

    const deleted = await j.write('delete', { entityType: 'clip', entityId: 'c1', version: 2 })
    expect(deleted).toMatchObject({ version: 3 })
    await waitFor(() => y.clips().get('c1')?.get('_deleted') === true, 'soft delete on the Yjs device')
    expect(y.clips().has('c1')).toBe(true)
    expect(y.clips().get('c1')?.get('deletedAt')).toEqual(expect.any(Number))
    expect(y.clips().get('c1')?.get('content')).toBe('hello')
  })

  it('a resent change id is acknowledged again with the same result and applied once, also after a restart', async () => {
    const server = await t.start()
    const j = await t.jsonDevice('alice', 'web')
    const change = { id: 'change-1', entityType: 'tag', entityId: 't1', data: { name: 'work' } }
    const first = await j.write('create', change)
    const again = await j.write('create', change)
    expect(again).toEqual(first)
    const y = await t.device('alice', 'phone')
    expect(y.doc.getMap('tags').get('t1')).toBeInstanceOf(Y.Map)

    await t.start(server.config.dataDir)
    const j2 = await t.jsonDevice('alice', 'web-2')
    expect(await j2.write('create', change)).toEqual(first)
    expect(j2.entity('tag', 't1')?.version).toBe(1)
  })

  it('text and list fields merge with concurrent Yjs edits', async () => {
    await t.start()
    const j = await t.jsonDevice('alice', 'web')
    await j.write('create', { entityType: 'template', entityId: 'tp', data: { name: 'sig', body: 'Hello world' } })
    await j.write('create', { entityType: 'set', entityId: 's', data: { name: 'set', clipIds: ['a', 'b', 'c'] } })
    const y = await t.device('alice', 'phone')
    y.goOffline()
    const body = y.doc.getMap('templates').get('tp') as Y.Map<unknown>
    ;(body.get('body') as Y.Text).insert(0, '>> ')
    const set = y.doc.getMap('sets').get('s') as Y.Map<unknown>
    ;(set.get('clipIds') as Y.Array<string>).push(['from-yjs'])

    // Meanwhile the JSON device rewrites the whole strings and arrays; the server turns them into minimal edits.
    await j.write('update', { entityType: 'template', entityId: 'tp', data: { body: 'Hello brave world' } })
    await j.write('update', { entityType: 'set', entityId: 's', data: { clipIds: ['a', 'c', 'd'] } })
    await y.reconnect()
    await y.flushed()
    expect((body.get('body') as Y.Text).toJSON()).toBe('>> Hello brave world')
    expect((set.get('clipIds') as Y.Array<string>).toArray()).toEqual(['a', 'c', 'd', 'from-yjs'])
    await waitFor(() => j.entity('template', 'tp')?.data.body === '>> Hello brave world', 'merged text on JSON device')
    expect(j.entity('set', 's')?.data.clipIds).toEqual(['a', 'c', 'd', 'from-yjs'])
  })

  it('a JSON device and a Yjs device of one user see each other\'s edits live', async () => {
    await t.start()
    const j = await t.jsonDevice('alice', 'web')
    const y = await t.device('alice', 'phone')
    await j.write('create', { entityType: 'folder', entityId: 'f1', data: { name: 'Work', parentId: null } })
    await waitFor(() => y.doc.getMap('folders').has('f1'), 'folder on the Yjs device')

    y.addClip('from-yjs', 'typed on the phone')
    await y.flushed()
    await waitFor(() => j.entity('clip', 'from-yjs') !== undefined, 'clip on the JSON device')
    const live = j.live.find((c) => c.entityId === 'from-yjs')
    expect(live).toMatchObject({ operationType: 'create', entityType: 'clip', deviceId: 'phone', version: 1, userId: 'alice' })
    expect(live?.data).toMatchObject({ content: 'typed on the phone' })
    // The JSON device's own change is acknowledged, not echoed.
    expect(j.live.some((c) => c.entityId === 'f1')).toBe(false)
  })
})
