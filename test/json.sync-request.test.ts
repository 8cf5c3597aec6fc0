/**
 * Change-log syncs of JSON clients (protocol §5): full and incremental
 * syncs, the entities filter, paging and its bounds, the order of a full sync,
 * resuming after a disconnect, and the commit clock behind every timestamp.
 */
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { SyncOperationType, type SyncChange } from '../src/types/sync.js'
import type { YjsDevice } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import type { JsonDevice} from './helpers/json-device.js';
import { yjsWrite, type ChangesPage, type SyncOptions } from './helpers/json-device.js'

const key = (c: SyncChange): string => `${c.entityType}:${c.entityId ?? ''}`
const keys = (changes: readonly SyncChange[]): string[] => changes.map(key)

/** Creates `n` clips `<prefix>0 .. <prefix>n-1` in one Yjs transaction (one commit); returns its ack. */
function clipsInOneCommit(y: YjsDevice, n: number, prefix = 'c') {
  return yjsWrite(y, (doc) => {
    const clips = doc.getMap<Y.Map<unknown>>('clips')
    for (let i = 0; i < n; i++) {
      clips.set(`${prefix}${i}`, new Y.Map<unknown>([['content', `clip ${i}`], ['contentType', 'text'], ['createdAt', i]]))
    }
  })
}

describe('sync requests handled (protocol §5)', () => {
  const t = useServer()

  /** A socket of `userId` that has not synced. */
  const unsynced = (deviceId: string, userId = 'alice') => t.unsyncedJsonDevice(userId, deviceId)

  /** Pages by hand from `from` (undefined: a full sync) until the last page. */
  async function pageThrough(device: JsonDevice, options: SyncOptions, maxPages = 100): Promise<ChangesPage[]> {
    const pages: ChangesPage[] = []
    let request: SyncOptions = options
    for (let i = 0; i < maxPages; i++) {
      const { reply, page } = await device.syncPage(request)
      expect(reply.ok).toBe(true)
      if (!page) throw new Error('no page')
      pages.push(page)
      if (!page.hasMore) return pages
      request = { ...options, lastSyncTimestamp: page.cursor }
    }
    throw new Error('too many pages')
  }

  it('a full sync sends one create per live entity with its whole state; deleted ones only with includeDeleted: true', async () => {
    await t.start()
    const w = await t.jsonDevice('alice', 'writer')
    await w.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'one', contentType: 'text', createdAt: 1 } })
    await w.write('create', { entityType: 'clip', entityId: 'c2', data: { content: 'two', contentType: 'text', createdAt: 2 } })
    await w.write('create', { entityType: 'clip', entityId: 'c3', data: { content: 'three', contentType: 'text', createdAt: 3 } })
    await w.write('create', { entityType: 'folder', entityId: 'f1', data: { name: 'Work', parentId: null } })
    await w.write('update', { entityType: 'clip', entityId: 'c2', data: { pinned: true, tagIds: ['t1'] } })
    const y = await t.device('alice', 'phone')
    await yjsWrite(y, (doc) => doc.getMap('tags').set('t1', new Y.Map<unknown>([['name', 'red'], ['color', '#f00']])))
    const last = await w.write('delete', { entityType: 'clip', entityId: 'c3' })
    await t.jsonDevice('bob', 'other') // another user's data is never part of alice's sync
    const bob = await t.jsonDevice('bob', 'other-2')
    await bob.write('create', { entityType: 'clip', entityId: 'bob-clip', data: { content: 'bob' } })

    const r = await t.jsonDevice('alice', 'reader')
    expect(r.events).toEqual(['sync:start', 'sync:response', 'sync:complete'])
    const [page] = r.pages
    if (!page) throw new Error('no page')
    const common = { id: expect.any(String), userId: 'alice', operationType: 'create', timestamp: expect.any(Number) }
    expect([...page.changes].sort((a, b) => key(a).localeCompare(key(b)))).toEqual([
      { ...common, entityType: 'clip', entityId: 'c1', deviceId: 'writer', version: 1, data: { content: 'one', contentType: 'text', createdAt: 1 } },
      {
        ...common,
        entityType: 'clip',
        entityId: 'c2',
        deviceId: 'writer',
        version: 2,
        data: { content: 'two', contentType: 'text', createdAt: 2, pinned: true, tagIds: ['t1'] },
      },
      { ...common, entityType: 'folder', entityId: 'f1', deviceId: 'writer', version: 1, data: { name: 'Work', parentId: null } },
      { ...common, entityType: 'tag', entityId: 't1', deviceId: 'phone', version: 1, data: { name: 'red', color: '#f00' } },
    ])
    expect(page.hasMore).toBe(false)
    expect(page.serverTimestamp).toBe(last.serverTimestamp)
    expect(page.cursor).toBeGreaterThanOrEqual(Math.max(...page.changes.map((c) => c.timestamp)))
    expect(page.cursor).toBeLessThanOrEqual(page.serverTimestamp)
    expect(r.messages[0]?.payload).toEqual({ deviceId: 'reader', mode: 'changes' })
    expect(r.messages[2]?.payload).toEqual({ deviceId: 'reader', mode: 'changes', cursor: page.cursor, serverTimestamp: page.serverTimestamp })

    const explicit = await unsynced('reader-explicit')
    const { page: withoutDeleted } = await explicit.syncPage({ includeDeleted: false })
    expect(keys(withoutDeleted?.changes ?? []).sort()).toEqual(['clip:c1', 'clip:c2', 'folder:f1', 'tag:t1'])

    const d = await t.jsonDevice('alice', 'reader-deleted', { includeDeleted: true })
    const all = d.pages[0]?.changes ?? []
    expect(keys(all).sort()).toEqual(['clip:c1', 'clip:c2', 'clip:c3', 'folder:f1', 'tag:t1'])
    expect(all.find((c) => c.entityId === 'c3')).toMatchObject({
      operationType: 'delete',
      version: 2,
      timestamp: last.serverTimestamp,
      data: { content: 'three', contentType: 'text', createdAt: 3, _deleted: true, deletedAt: expect.any(Number) },
    })
    expect(all.filter((c) => c.entityId !== 'c3').every((c) => c.operationType === SyncOperationType.CREATE)).toBe(true)
  })

  it('an incremental sync sends one change per entity changed after lastSyncTimestamp, carrying its whole current state', async () => {
    await t.start()
    const w = await t.jsonDevice('alice', 'writer')
    for (const id of ['c1', 'c2', 'c3', 'c4']) {
      await w.write('create', { entityType: 'clip', entityId: id, data: { content: id, contentType: 'text', createdAt: 1 } })
    }
    await w.write('create', { entityType: 'tag', entityId: 't1', data: { name: 'red', color: '#f00' } })
    const r = await t.jsonDevice('alice', 'reader')
    const since = r.cursor ?? -1
    expect(r.pages[0]?.changes).toHaveLength(5)
    r.close()

    await w.write('update', { entityType: 'clip', entityId: 'c1', data: { pinned: true } })
    const deleted = await w.write('delete', { entityType: 'clip', entityId: 'c2' })
    const c1 = await w.write('update', { entityType: 'clip', entityId: 'c1', data: { title: 'T' } })
    const y = await t.device('alice', 'phone')
    const tag = await yjsWrite(y, (doc) => (doc.getMap('tags').get('t1') as Y.Map<unknown>).set('name', 'blue'))
    const c5 = await w.write('create', { entityType: 'clip', entityId: 'c5', data: { content: 'new' } })
    // A change that changes nothing is no entity change.
    await w.write('update', { entityType: 'clip', entityId: 'c4', data: { contentType: 'text' } })

    const again = await unsynced('reader')
    const { reply, page } = await again.syncPage({ lastSyncTimestamp: since, requestId: 'inc' })
    if (!page) throw new Error('no page')
    expect(again.events).toEqual(['sync:start', 'sync:response', 'sync:complete'])
    expect(reply).toEqual({ ok: true, hasMore: false, cursor: page.cursor, serverTimestamp: page.serverTimestamp })
    expect(keys(page.changes)).toEqual(['clip:c2', 'clip:c1', 'tag:t1', 'clip:c5'])
    const [c2Change, c1Change, tagChange, c5Change] = page.changes
    expect(c2Change).toMatchObject({
      operationType: 'delete',
      version: 2,
      timestamp: deleted.serverTimestamp,
      data: { content: 'c2', contentType: 'text', createdAt: 1, _deleted: true, deletedAt: expect.any(Number) },
    })
    expect(c1Change).toMatchObject({
      operationType: 'update',
      version: 3,
      deviceId: 'writer',
      timestamp: c1.serverTimestamp,
      data: { content: 'c1', contentType: 'text', createdAt: 1, pinned: true, title: 'T' },
    })
    expect(tagChange).toMatchObject({
      operationType: 'update',
      version: 2,
      deviceId: 'phone',
      timestamp: tag.serverTimestamp,
      data: { name: 'blue', color: '#f00' },
    })
    expect(c5Change).toMatchObject({ operationType: 'update', version: 1, timestamp: c5.serverTimestamp, data: { content: 'new' } })
    const stamps = page.changes.map((c) => c.timestamp)
    expect(stamps.every((ts, i) => ts > since && (i === 0 || ts > (stamps[i - 1] ?? 0)))).toBe(true)
    expect(page.cursor).toBeGreaterThanOrEqual(c5.serverTimestamp as number)

    // includeDeleted defaults to true here; false leaves deleted entities out.
    const { page: live } = await again.syncPage({ lastSyncTimestamp: since, includeDeleted: false })
    expect(keys(live?.changes ?? [])).toEqual(['clip:c1', 'tag:t1', 'clip:c5'])
    // Nothing changed after the cursor: an empty page, and the sync still completes.
    const before = again.events.length
    const { page: empty } = await again.syncPage({ lastSyncTimestamp: page.cursor })
    expect(empty).toEqual({ mode: 'changes', changes: [], hasMore: false, cursor: page.cursor, serverTimestamp: expect.any(Number) })
    expect(again.events.slice(before)).toEqual(['sync:start', 'sync:response', 'sync:complete'])
  })

  it('entities filters by type, in full and incremental syncs; an unknown type is INVALID_PAYLOAD', async () => {
    await t.start()
    const w = await t.jsonDevice('alice', 'writer')
    await w.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'x' } })
    await w.write('create', { entityType: 'folder', entityId: 'f1', data: { name: 'F' } })
    const since = (await w.write('create', { entityType: 'tag', entityId: 't1', data: { name: 'T' } })).serverTimestamp as number
    await w.write('create', { entityType: 'template', entityId: 'tp1', data: { name: 'sig', body: 'Hi' } })
    await w.write('update', { entityType: 'folder', entityId: 'f1', data: { color: 'red' } })
    await w.write('update', { entityType: 'clip', entityId: 'c1', data: { title: 'later' } })

    const r = await unsynced('reader')
    const full = await r.syncPage({ entities: ['folder', 'tag'] })
    expect(keys(full.page?.changes ?? []).sort()).toEqual(['folder:f1', 'tag:t1'])
    const none = await r.syncPage({ entities: ['setting'] })
    expect(none.page).toMatchObject({ changes: [], hasMore: false })
    const incremental = await r.syncPage({ entities: ['clip', 'folder'], lastSyncTimestamp: since })
    expect(keys(incremental.page?.changes ?? [])).toEqual(['folder:f1', 'clip:c1'])

    const bad = await r.syncPage({ entities: ['clips'] })
    expect(bad.reply).toEqual({ ok: false, error: { code: 'INVALID_PAYLOAD', message: expect.any(String) } })
    expect(bad.page).toBeUndefined()
  })

  it('limit pages a sync: sync:start before each page, hasMore and cursor, sync:complete only after the last page', async () => {
    await t.start()
    const y = await t.device('alice', 'phone')
    await clipsInOneCommit(y, 12)
    const w = await t.jsonDevice('alice', 'writer')
    // Critical entities changed after the clips: a full sync still leads with them.
    await w.write('create', { entityType: 'folder', entityId: 'f1', data: { name: 'one' } })
    await w.write('create', { entityType: 'folder', entityId: 'f2', data: { name: 'two' } })
    await w.write('update', { entityType: 'clip', entityId: 'c0', data: { pinned: true } })

    const r = await unsynced('reader')
    const pages = await pageThrough(r, { limit: 5 })
    expect(pages.length).toBeGreaterThanOrEqual(3)
    expect(pages.map((p) => p.hasMore)).toEqual([...pages.slice(1).map(() => true), false])
    expect(pages.every((p) => p.changes.length >= 1 && p.changes.length <= 5)).toBe(true)
    expect(r.events).toEqual([...pages.flatMap(() => ['sync:start', 'sync:response']), 'sync:complete'])
    const complete = r.messages.at(-1)?.payload
    expect(complete).toEqual({ deviceId: 'reader', mode: 'changes', cursor: pages.at(-1)?.cursor, serverTimestamp: pages.at(-1)?.serverTimestamp })
    expect(keys(pages[0]?.changes ?? []).slice(0, 2)).toEqual(['folder:f1', 'folder:f2'])
    // After the first page, each page continues strictly after the previous cursor: nothing split, nothing skipped.
    for (let i = 1; i < pages.length; i++) {
      const previous = pages[i - 1]?.cursor ?? Infinity
      expect(pages[i]?.changes.every((c) => c.timestamp > previous)).toBe(true)
      expect(pages[i]?.cursor).toBeGreaterThanOrEqual(previous)
    }
    for (const p of pages) expect(new Set(keys(p.changes)).size).toBe(p.changes.length)
    const received = new Set(pages.flatMap((p) => keys(p.changes)))
    expect([...received].sort()).toEqual([...Array.from({ length: 12 }, (_, i) => `clip:c${i}`), 'folder:f1', 'folder:f2'].sort())

    const oneGo = await t.jsonDevice('alice', 'one-go', { limit: 5000 })
    expect(oneGo.pages).toHaveLength(1)
    expect(r.liveEntities()).toEqual(oneGo.liveEntities())
    expect(r.entity('clip', 'c0')).toMatchObject({ version: 2, data: { pinned: true } })
  })

  it('limit bounds: 0 and 5001 are INVALID_PAYLOAD, 1 and 5000 are accepted, and the default page is 500', async () => {
    await t.start()
    const y = await t.device('alice', 'phone')
    await clipsInOneCommit(y, 1001)
    const r = await unsynced('reader')
    const errors: unknown[] = []
    r.socket.on('sync:error', (e: unknown) => errors.push(e))
    for (const [i, limit] of [0, 5001, -1, 1.5, '10', null].entries()) {
      const { reply, page } = await r.syncPage({ limit: limit as number, requestId: `bad-${i}` })
      expect(reply).toEqual({ ok: false, error: { code: 'INVALID_PAYLOAD', message: expect.stringContaining('limit') } })
      expect(page).toBeUndefined()
    }
    await r.barrier()
    expect(errors).toEqual(
      [0, 1, 2, 3, 4, 5].map((i) => ({ code: 'INVALID_PAYLOAD', message: expect.any(String), event: 'sync:request', requestId: `bad-${i}` })),
    )
    expect(r.events.filter((e) => e.startsWith('sync:') && e !== 'sync:error' && e !== 'sync:status')).toEqual([])

    const one = await r.syncPage({ limit: 1 })
    expect(one.page).toMatchObject({ hasMore: true })
    expect(one.page?.changes).toHaveLength(1)
    const max = await r.syncPage({ limit: 5000 })
    expect(max.page).toMatchObject({ hasMore: false })
    expect(max.page?.changes).toHaveLength(1001)

    const byDefault = await t.jsonDevice('alice', 'default')
    expect(byDefault.pages.map((p) => [p.changes.length, p.hasMore])).toEqual([
      [500, true],
      [500, true],
      [1, false],
    ])
    expect(byDefault.entities.size).toBe(1001)
  })

  it('a full sync sends the critical types first: settings, folders, tags, sets, templates, then clips', async () => {
    await t.start()
    const w = await t.jsonDevice('alice', 'writer')
    const create = (entityType: string, entityId: string, data: Record<string, unknown>) => w.write('create', { entityType, entityId, data })
    await create('clip', 'c1', { content: 'first' })
    await create('template', 'tp', { name: 'sig', body: 'Regards' })
    await create('set', 's', { name: 'set', clipIds: ['c1'] })
    await create('clip', 'c2', { content: 'second' })
    await create('tag', 't', { name: 'tag' })
    await create('folder', 'f1', { name: 'one' })
    await create('setting', 'theme', { value: 'dark' })
    await create('clip', 'c3', { content: 'third' })
    await create('folder', 'f2', { name: 'two' })
    const y = await t.device('alice', 'phone')
    await yjsWrite(y, (doc) => doc.getMap('settings').set('lang', new Y.Map<unknown>([['value', 'en']])))

    const r = await t.jsonDevice('alice', 'reader')
    const changes = r.pages[0]?.changes ?? []
    expect(changes.map((c) => c.entityType)).toEqual(['setting', 'setting', 'folder', 'folder', 'tag', 'set', 'template', 'clip', 'clip', 'clip'])
    expect(keys(changes)).toEqual([
      'setting:theme',
      'setting:lang',
      'folder:f1',
      'folder:f2',
      'tag:t',
      'set:s',
      'template:tp',
      'clip:c1',
      'clip:c2',
      'clip:c3',
    ])

    // Paged: the first page still leads with them.
    const p = await unsynced('paged')
    const { page } = await p.syncPage({ limit: 8 })
    expect(page?.hasMore).toBe(true)
    expect(keys(page?.changes ?? [])).toEqual(keys(changes).slice(0, 8))
  })

  it('a paged sync resumes after a disconnect from its last cursor and ends with what a one-go sync gets', async () => {
    await t.start()
    const w = await t.jsonDevice('alice', 'writer')
    await w.write('create', { entityType: 'folder', entityId: 'f1', data: { name: 'Inbox' } })
    const y = await t.device('alice', 'phone')
    await clipsInOneCommit(y, 40)
    await w.write('update', { entityType: 'clip', entityId: 'c30', data: { title: 'thirty' } })
    await w.write('delete', { entityType: 'clip', entityId: 'c31' })

    const variants: SyncOptions[] = [{ limit: 7 }, { limit: 7, includeDeleted: true }]
    const firstHalves: JsonDevice[] = []
    for (const [i, options] of variants.entries()) {
      const a = await unsynced(`laptop-${i}`)
      let request: SyncOptions = options
      for (let k = 0; k < 3; k++) {
        const { page } = await a.syncPage(request)
        expect(page?.hasMore).toBe(true)
        request = { ...options, lastSyncTimestamp: page?.cursor ?? -1 }
      }
      expect(a.events).not.toContain('sync:complete')
      a.close()
      firstHalves.push(a)
    }

    // While they are away: a clip they already have changes, one is deleted, one is new.
    const firstReceived = firstHalves[0]?.pages.flatMap((p) => keys(p.changes)) ?? []
    expect(firstReceived).toContain('clip:c0')
    expect(firstReceived).toContain('clip:c1')
    await w.write('update', { entityType: 'clip', entityId: 'c0', data: { favorite: true } })
    await w.write('delete', { entityType: 'clip', entityId: 'c1' })
    await w.write('create', { entityType: 'clip', entityId: 'c-new', data: { content: 'new' } })

    for (const [i, options] of variants.entries()) {
      const a = firstHalves[i]
      if (!a) throw new Error('missing device')
      const back = await unsynced(`laptop-${i}`)
      for (const [k, v] of a.entities) back.entities.set(k, v)
      const rest = await pageThrough(back, { ...options, lastSyncTimestamp: a.cursor ?? -1 })
      expect(back.events.at(-1)).toBe('sync:complete')
      // What the first pages already carried is not sent again, unless it changed since.
      const again = rest.flatMap((p) => keys(p.changes)).filter((k) => a.pages.some((p) => keys(p.changes).includes(k)))
      expect(again.sort()).toEqual(['clip:c0', 'clip:c1'])

      const oneGo = await t.jsonDevice('alice', `desktop-${i}`, { ...options, limit: 5000 })
      expect(oneGo.pages).toHaveLength(1)
      expect(back.liveEntities()).toEqual(oneGo.liveEntities())
      expect(back.liveEntities().size).toBe(1 + 40 - 2 + 1)
      expect(back.cursor).toBe(oneGo.cursor)
      if (options.includeDeleted) expect(back.entities).toEqual(oneGo.entities)
    }
  })

  it('data transfer: an incremental sync after changing 3 of 1,000 entities carries exactly those 3 changes', async () => {
    await t.start()
    const y = await t.device('alice', 'phone')
    await clipsInOneCommit(y, 1000)
    const r = await t.jsonDevice('alice', 'reader')
    expect(r.entities.size).toBe(1000)
    const since = r.cursor ?? -1
    r.close()

    const w = await t.jsonDevice('alice', 'writer')
    const a = await w.write('update', { entityType: 'clip', entityId: 'c10', data: { pinned: true } })
    const b = await w.write('delete', { entityType: 'clip', entityId: 'c500' })
    const c = await yjsWrite(y, (doc) => (doc.getMap('clips').get('c999') as Y.Map<unknown>).set('title', 'edited'))

    const back = await unsynced('reader')
    const { page } = await back.syncPage({ lastSyncTimestamp: since })
    expect(page?.hasMore).toBe(false)
    expect(page?.changes.map((ch) => [ch.entityId, ch.operationType, ch.version, ch.timestamp])).toEqual([
      ['c10', 'update', 2, a.serverTimestamp],
      ['c500', 'delete', 2, b.serverTimestamp],
      ['c999', 'update', 2, c.serverTimestamp],
    ])
    expect(page?.changes[0]?.data).toEqual({ content: 'clip 10', contentType: 'text', createdAt: 10, pinned: true })
    expect(page?.changes[2]?.data).toEqual({ content: 'clip 999', contentType: 'text', createdAt: 999, title: 'edited' })
  })

  it('timestamps: strictly increasing, one per entity change; a commit of N entities takes N consecutive values and its ack the last', async () => {
    const server = await t.start()
    const w = await t.jsonDevice('alice', 'writer')
    const observer = await t.jsonDevice('alice', 'observer')
    const acks: number[] = []
    for (let i = 0; i < 5; i++) {
      const ack = await w.write('create', { entityType: 'clip', entityId: `j${i}`, data: { content: `${i}` } })
      acks.push(ack.serverTimestamp as number)
    }
    expect(acks.every((ts, i) => i === 0 || ts > (acks[i - 1] ?? Infinity))).toBe(true)
    const before = acks.at(-1) ?? -1

    // One Yjs transaction touching four clips (three new, one existing): one commit, four entity changes.
    const y = await t.device('alice', 'phone')
    const ack = await yjsWrite(y, (doc) => {
      const clips = doc.getMap<Y.Map<unknown>>('clips')
      for (const id of ['y0', 'y1', 'y2']) clips.set(id, new Y.Map<unknown>([['content', id]]))
      clips.get('j0')?.set('title', 'touched')
    })
    const last = ack.serverTimestamp as number
    const fromPhone = () => observer.live.filter((c) => c.deviceId === 'phone')
    await observer.barrier()
    expect(fromPhone()).toHaveLength(4)
    expect(fromPhone().map((c) => c.timestamp).sort((a, b) => a - b)).toEqual([last - 3, last - 2, last - 1, last])
    expect(last - 3).toBeGreaterThan(before)
    // A JSON change's ack carries its entity's timestamp, as other devices see it.
    expect(observer.live.filter((c) => c.deviceId === 'writer').map((c) => c.timestamp)).toEqual(acks)

    // Distinct timestamps: a page boundary never splits one commit's entities ambiguously.
    const r = await unsynced('reader')
    const pages = await pageThrough(r, { lastSyncTimestamp: before, limit: 2 })
    expect(pages.map((p) => p.changes.map((c) => c.timestamp))).toEqual([
      [last - 3, last - 2],
      [last - 1, last],
    ])
    expect(pages.map((p) => p.cursor)).toEqual([last - 2, last])
    const full = await t.jsonDevice('alice', 'full')
    const stamps = [...full.entities.values()].map((e) => e.timestamp)
    expect(stamps).toHaveLength(8)
    expect(new Set(stamps).size).toBe(8)

    // The clock keeps increasing across a restart.
    await t.start(server.config.dataDir)
    const after = await t.jsonDevice('alice', 'writer-2')
    const next = await after.write('create', { entityType: 'clip', entityId: 'after-restart', data: { content: 'x' } })
    expect(next.serverTimestamp as number).toBeGreaterThan(last)
  })
})
