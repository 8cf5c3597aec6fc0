/**
 * Live fan-out of changes (protocol §§1, 4, 5, 7): a change reaches the
 * user's other live sockets in their own dialect, and never the sender, another
 * user, a paused socket (it gets what it missed on resume) or a socket that
 * has not completed a sync.
 */
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { waitFor, type YjsDevice } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import type { JsonDevice} from './helpers/json-device.js';
import { yjsWrite } from './helpers/json-device.js'

const ENTITY_EVENTS = ['sync:entity_created', 'sync:entity_updated', 'sync:entity_deleted']
/** Events that carry live changes to a socket. */
const liveEvents = (events: readonly string[]): string[] => events.filter((e) => ENTITY_EVENTS.includes(e) || e === 'sync:update')

/** A round trip on a Yjs device's socket: whatever the server sent it before is received. */
async function yjsBarrier(y: YjsDevice): Promise<void> {
  await y.socket.emitWithAck('sync:status', { deviceId: y.deviceId })
}

/** A synced device to connect: `json:` or `yjs:`, then `user/device`. */
type DeviceSpec = `${'json' | 'yjs'}:${string}/${string}`
type Connected<S extends readonly DeviceSpec[]> = { -readonly [K in keyof S]: S[K] extends `json:${string}` ? JsonDevice : YjsDevice }

describe('changes broadcast to the right clients only (protocol §§5 and 7)', () => {
  const t = useServer()
  const unsynced = (deviceId: string, userId = 'alice') => t.unsyncedJsonDevice(userId, deviceId)
  /** Starts the server, then connects and syncs `specs` one after the other, in that order. */
  async function startWith<const S extends readonly DeviceSpec[]>(...specs: S): Promise<Connected<S>> {
    await t.start()
    const devices: (JsonDevice | YjsDevice)[] = []
    for (const spec of specs) {
      const [kind, userId = '', deviceId = ''] = spec.split(/[:/]/)
      devices.push(kind === 'json' ? await t.jsonDevice(userId, deviceId) : await t.device(userId, deviceId))
    }
    return devices as Connected<S>
  }

  it("a JSON change reaches the user's other live JSON sockets as sync:entity_* and live Yjs sockets as sync:update; not the sender, not another user", async () => {
    const [sender, tablet, laptop, phone, bobJson, bobYjs] = await startWith('json:alice/web', 'json:alice/tablet', 'json:alice/laptop', 'yjs:alice/phone', 'json:bob/web', 'yjs:bob/phone')
    const bobEvents: string[] = []
    bobYjs.socket.onAny((e: string) => bobEvents.push(e))

    const created = await sender.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'hi', contentType: 'text' } })
    const updated = await sender.write('update', { entityType: 'clip', entityId: 'c1', data: { pinned: true } })
    const deleted = await sender.write('delete', { entityType: 'clip', entityId: 'c1' })

    const common = { id: expect.any(String), userId: 'alice', deviceId: 'web', entityType: 'clip', entityId: 'c1' }
    for (const d of [tablet, laptop]) {
      await waitFor(() => d.live.length === 3, `three live changes on ${d.deviceId}`)
      expect(liveEvents(d.events)).toEqual(ENTITY_EVENTS)
      expect(d.live).toEqual([
        { ...common, operationType: 'create', version: 1, timestamp: created.serverTimestamp, data: { content: 'hi', contentType: 'text' } },
        {
          ...common,
          operationType: 'update',
          version: 2,
          timestamp: updated.serverTimestamp,
          data: { content: 'hi', contentType: 'text', pinned: true },
        },
        {
          ...common,
          operationType: 'delete',
          version: 3,
          timestamp: deleted.serverTimestamp,
          data: { content: 'hi', contentType: 'text', pinned: true, _deleted: true, deletedAt: expect.any(Number) },
        },
      ])
    }
    await waitFor(() => phone.received.length === 3, 'three sync:update on the Yjs socket')
    expect(phone.received.map((r) => [r.deviceId, r.serverTimestamp])).toEqual([
      ['web', created.serverTimestamp],
      ['web', updated.serverTimestamp],
      ['web', deleted.serverTimestamp],
    ])
    expect(phone.received.every((r) => r.update instanceof Uint8Array)).toBe(true)
    expect(phone.clips().get('c1')?.toJSON()).toEqual({
      content: 'hi',
      contentType: 'text',
      pinned: true,
      _deleted: true,
      deletedAt: expect.any(Number),
    })

    // Everything above was emitted before the acks; a round trip on each other socket flushes it.
    await sender.barrier()
    await bobJson.barrier()
    await yjsBarrier(bobYjs)
    expect(liveEvents(sender.events)).toEqual([])
    expect(sender.live).toEqual([])
    expect(liveEvents(bobJson.events)).toEqual([])
    expect(liveEvents(bobEvents)).toEqual([])
    expect(bobYjs.received).toEqual([])
    expect(bobYjs.clips().size).toBe(0)
  })

  it("a Yjs change reaches every live JSON socket of the user as sync:entity_* and its other Yjs sockets, and no other user's", async () => {
    const [web, tablet, writer, other, bobJson, bobYjs] = await startWith('json:alice/web', 'json:alice/tablet', 'yjs:alice/phone', 'yjs:alice/laptop', 'json:bob/web', 'yjs:bob/phone')

    const ack = await yjsWrite(writer, (doc) => {
      doc.getMap('folders').set('f1', new Y.Map<unknown>([['name', 'Work'], ['parentId', null]]))
      doc.getMap('clips').set('c1', new Y.Map<unknown>([['content', 'typed'], ['folderId', 'f1']]))
    })
    for (const d of [web, tablet]) {
      await waitFor(() => d.live.length === 2, `two live changes on ${d.deviceId}`)
      expect(liveEvents(d.events)).toEqual(['sync:entity_created', 'sync:entity_created'])
      expect(d.live.map((c) => [c.entityType, c.entityId, c.operationType, c.deviceId, c.version])).toEqual(
        expect.arrayContaining([
          ['folder', 'f1', 'create', 'phone', 1],
          ['clip', 'c1', 'create', 'phone', 1],
        ]),
      )
      expect(Math.max(...d.live.map((c) => c.timestamp))).toBe(ack.serverTimestamp)
      expect(d.entity('clip', 'c1')?.data).toEqual({ content: 'typed', folderId: 'f1' })
    }
    await waitFor(() => other.clips().has('c1'), 'the clip on the other Yjs socket')
    expect(other.received.map((r) => r.deviceId)).toEqual(['phone'])

    await writer.socket.emitWithAck('sync:status', 'phone')
    await bobJson.barrier()
    await yjsBarrier(bobYjs)
    expect(writer.received).toEqual([])
    expect(liveEvents(bobJson.events)).toEqual([])
    expect(bobYjs.received).toEqual([])
  })

  it('a paused socket gets no live changes; on sync:resume it gets what it missed as sync:response then sync:complete, then live changes again', async () => {
    const [sender, paused, pausedYjs, control, writer] = await startWith('json:alice/web', 'json:alice/tablet', 'yjs:alice/phone-2', 'json:alice/laptop', 'yjs:alice/phone')
    await sender.write('create', { entityType: 'clip', entityId: 'c0', data: { content: 'before the pause' } })
    await waitFor(() => paused.entity('clip', 'c0') !== undefined, 'c0 live before the pause')
    await waitFor(() => pausedYjs.clips().has('c0'), 'c0 live on the Yjs socket before the pause')
    await paused.pause()
    expect(await pausedYjs.socket.emitWithAck('sync:pause', {})).toEqual({ ok: true })
    const mark = paused.messages.length
    const yjsMark = pausedYjs.received.length

    await sender.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'one' } })
    await sender.write('update', { entityType: 'clip', entityId: 'c1', data: { title: 'One' } })
    await sender.write('create', { entityType: 'clip', entityId: 'c2', data: { content: 'two' } })
    await sender.write('delete', { entityType: 'clip', entityId: 'c2' })
    const lastWrite = await yjsWrite(writer, (doc) => doc.getMap('clips').set('c3', new Y.Map<unknown>([['content', 'three']])))
    await waitFor(() => control.live.length === 6, 'every change on the live control socket')

    await paused.barrier()
    await yjsBarrier(pausedYjs)
    expect(paused.messages.slice(mark).map((m) => m.event)).toEqual(['sync:status'])
    expect(pausedYjs.received.slice(yjsMark)).toEqual([])
    expect(pausedYjs.clips().has('c1')).toBe(false)

    const { pages, complete } = await paused.resume()
    expect(paused.messages.slice(mark + 1).map((m) => m.event)).toEqual(['sync:response', 'sync:complete'])
    expect(pages).toHaveLength(1)
    expect(pages[0]?.hasMore).toBe(false)
    expect(pages[0]?.changes.map((c) => [c.entityId, c.operationType, c.version])).toEqual([
      ['c1', 'update', 2],
      ['c2', 'delete', 2],
      ['c3', 'update', 1],
    ])
    expect(pages[0]?.changes[0]?.data).toEqual({ content: 'one', title: 'One' })
    expect(complete).toEqual({ deviceId: 'tablet', mode: 'changes', cursor: lastWrite.serverTimestamp, serverTimestamp: expect.any(Number) })
    expect(pages[0]?.cursor).toBe(complete?.cursor)

    const yjsResumed = pausedYjs.nextSync()
    expect(await pausedYjs.socket.emitWithAck('sync:resume', {})).toMatchObject({ ok: true })
    await yjsResumed
    expect([...pausedYjs.clips().keys()].sort()).toEqual(['c0', 'c1', 'c2', 'c3'])
    expect(pausedYjs.clips().get('c2')?.get('_deleted')).toBe(true)

    // Live again.
    const liveBefore = paused.live.length
    await sender.write('create', { entityType: 'clip', entityId: 'c4', data: { content: 'after' } })
    await waitFor(() => paused.live.length === liveBefore + 1, 'a live change after resume')
    expect(paused.live.at(-1)).toMatchObject({ entityId: 'c4', operationType: 'create' })
    await waitFor(() => pausedYjs.clips().has('c4'), 'a live update on the resumed Yjs socket')
  })

  it('a resume that missed more than a page sends several sync:response pages, then one sync:complete', async () => {
    const [paused] = await startWith('json:alice/tablet')
    await paused.pause()
    const mark = paused.messages.length
    const writer = await t.device('alice', 'phone')
    const ack = await yjsWrite(writer, (doc) => {
      const clips = doc.getMap<Y.Map<unknown>>('clips')
      for (let i = 0; i < 5001; i++) clips.set(`c${i}`, new Y.Map<unknown>([['content', `${i}`]]))
    })
    await paused.barrier()
    expect(paused.live).toEqual([])

    const { pages, complete } = await paused.resume()
    expect(paused.messages.slice(mark + 1).map((m) => m.event)).toEqual(['sync:response', 'sync:response', 'sync:complete'])
    expect(pages.map((p) => [p.changes.length, p.hasMore])).toEqual([
      [5000, true],
      [1, false],
    ])
    expect(new Set(pages.flatMap((p) => p.changes.map((c) => c.entityId))).size).toBe(5001)
    expect(complete).toMatchObject({ deviceId: 'tablet', mode: 'changes', cursor: ack.serverTimestamp })
    expect(paused.entities.size).toBe(5001)
  })

  it('a socket paused before its first sync is not live after that sync until it resumes', async () => {
    const [sender] = await startWith('json:alice/web')
    const early = await unsynced('tablet')
    await early.pause()
    await early.sync()
    expect(early.events.at(-1)).toBe('sync:complete')
    await sender.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'missed' } })
    await early.barrier()
    expect(liveEvents(early.events)).toEqual([])

    const { pages } = await early.resume()
    expect(pages.flatMap((p) => p.changes.map((c) => c.entityId))).toEqual(['c1'])
    await sender.write('create', { entityType: 'clip', entityId: 'c2', data: { content: 'live' } })
    await waitFor(() => early.live.some((c) => c.entityId === 'c2'), 'a live change after resume')
  })

  it('a socket that has not completed a sync gets no live changes; one in the middle of a paged sync gets them in its later pages', async () => {
    const [sender] = await startWith('json:alice/web')
    for (const id of ['a', 'b', 'c']) await sender.write('create', { entityType: 'clip', entityId: id, data: { content: id } })
    const fresh = await unsynced('fresh')
    const refused = await unsynced('refused')
    expect((await refused.syncPage({ limit: 0 })).reply.ok).toBe(false)
    const midway = await unsynced('midway')
    const first = await midway.syncPage({ limit: 1 })
    expect(first.page?.hasMore).toBe(true)

    await sender.write('create', { entityType: 'clip', entityId: 'd', data: { content: 'd' } })
    await sender.write('update', { entityType: 'clip', entityId: 'a', data: { title: 'A' } })
    for (const d of [fresh, refused, midway]) {
      await d.barrier()
      expect(liveEvents(d.events)).toEqual([])
    }

    // The rest of midway's sync carries what changed meanwhile; then it is live.
    await midway.sync({ limit: 1, lastSyncTimestamp: first.page?.cursor ?? -1 })
    expect(midway.events.at(-1)).toBe('sync:complete')
    expect(midway.entity('clip', 'd')).toMatchObject({ version: 1, data: { content: 'd' } })
    expect(midway.entity('clip', 'a')).toMatchObject({ version: 2, data: { content: 'a', title: 'A' } })
    expect([...midway.entities.keys()].sort()).toEqual(['clip:a', 'clip:b', 'clip:c', 'clip:d'])
    await sender.write('update', { entityType: 'clip', entityId: 'd', data: { title: 'D' } })
    await waitFor(() => midway.live.length === 1, 'a live change once the sync completed')
    expect(midway.live[0]).toMatchObject({ entityId: 'd', operationType: 'update', version: 2 })

    await fresh.barrier()
    await refused.barrier()
    expect(liveEvents(fresh.events)).toEqual([])
    expect(liveEvents(refused.events)).toEqual([])
  })
})
