import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import * as Y from 'yjs'
import { describe, expect, it, vi } from 'vitest'
import type { Services } from '../src/services/index.js'
import { entityKey } from '../src/models/records.js'
import { SyncEntityType, SyncOperationType } from '../src/types/sync.js'
import { useLevelServices } from './helpers/level-services.js'
import { tempDir } from './helpers/server.js'

const run = promisify(execFile)
const author = { userId: 'alice', deviceId: 'laptop' }
const policy = { docIdleMs: 60_000, compactMaxUpdates: 4000, compactMaxBytes: 4 << 20 }

/** Runs `change` on the device's document: the update it made, and the clips it left. */
function edit(device: Y.Doc, change: (clips: Y.Map<unknown>) => void): { update: Uint8Array; clips: unknown } {
  const sv = Y.encodeStateVector(device)
  change(device.getMap('clips'))
  return { update: Y.encodeStateAsUpdate(device, sv), clips: device.getMap('clips').toJSON() }
}

const level = useLevelServices(policy)
const open = (reload = false): Promise<Services> => level.open({ reload })

describe("an applied update's values are held in arrays of their length", () => {
  it("holds each field's and each list's values as the device wrote them, applied and after a reload", async () => {
    let { sync } = await open()
    const doc = await sync.openDocument('alice').document
    const device = new Y.Doc()
    const tags = new Y.Array<string>()
    const edits = [
      // One value per field, and a list whose three values are one item.
      edit(device, (clips) => {
        tags.push(['a', 'b', 'c'])
        clips.set('c1', new Y.Map<unknown>([['content', 'hello'], ['createdAt', 1], ['tagIds', tags]]))
      }),
      // Into the middle of that item (Yjs splits it), and at its end (the new item may merge with it).
      edit(device, () => tags.insert(1, ['x', 'y'])),
      edit(device, () => tags.push(['d'])),
      edit(device, () => tags.delete(0, 1)),
      // A field overwritten: the old value's item is deleted.
      edit(device, (clips) => (clips.get('c1') as Y.Map<unknown>).set('content', 'hello again')),
      edit(device, (clips) => clips.set('c2', new Y.Map<unknown>([['content', 'second'], ['pinned', true], ['folderId', null]]))),
    ]
    for (const { update, clips } of edits) {
      await sync.applyUpdate(doc, update, author, 'pro')
      expect(doc.doc.getMap('clips').toJSON()).toEqual(clips)
    }
    expect(device.getMap('clips').toJSON()).toEqual({
      c1: { content: 'hello again', createdAt: 1, tagIds: ['x', 'y', 'b', 'c', 'd'] },
      c2: { content: 'second', pinned: true, folderId: null },
    })

    ;({ sync } = await open(true))
    const loaded = await sync.openDocument('alice').document
    expect(loaded.doc.getMap('clips').toJSON()).toEqual(device.getMap('clips').toJSON())
    // Still one document with the device: an update made after the reload applies on top.
    await sync.applyUpdate(loaded, edit(device, () => tags.insert(2, ['z'])).update, author, 'pro')
    expect((loaded.doc.getMap('clips').toJSON() as Record<string, { tagIds?: string[] }>).c1?.tagIds).toEqual(['x', 'y', 'z', 'b', 'c', 'd'])
  })

  it('copies a list item that Yjs merged from many structs of one update once, not once per struct', async () => {
    const { sync } = await open()
    const doc = await sync.openDocument('alice').document
    const device = new Y.Doc()
    const updates: Uint8Array[] = []
    device.on('update', (u: Uint8Array) => updates.push(u))
    const tags = new Y.Array<string>()
    device.getMap('clips').set('c1', new Y.Map<unknown>([['tagIds', tags]]))
    for (let i = 0; i < 2000; i++) tags.push([`t${i}`])
    // One update of 2,000 one-value structs (Y.mergeUpdates keeps them apart); applied, they are one item.
    const update = Y.mergeUpdates(updates)
    expect(Y.decodeUpdate(update).structs.length).toBeGreaterThan(2000)
    const slice = vi.spyOn(Array.prototype, 'slice')
    await sync.applyUpdate(doc, update, author, 'pro')
    const copies = slice.mock.calls.length
    slice.mockRestore()
    expect(copies).toBeLessThan(100)
    expect(((doc.doc.getMap('clips').toJSON() as Record<string, { tagIds: string[] }>).c1?.tagIds ?? []).length).toBe(2000)
  })

  it("holds a JSON change's list values in a copy of their length, as the server's own transaction made them", async () => {
    const { sync } = await open()
    const doc = await sync.openDocument('alice').document
    const slice = vi.spyOn(Array.prototype, 'slice')
    const change = { id: 'ch-1', entityType: SyncEntityType.CLIP, entityId: 'c1', operationType: SyncOperationType.CREATE, version: 0 }
    await sync.applyChange(doc, { ...change, data: { content: 'hello', tagIds: ['a', 'b', 'c'] } }, author, 'pro')
    const copies = slice.mock.results.map((r) => r.value as unknown)
    slice.mockRestore()
    const tags = (doc.doc.getMap('clips').get('c1') as Y.Map<unknown>).get('tagIds') as Y.Array<string>
    expect(tags.toArray()).toEqual(['a', 'b', 'c'])
    const values = (tags._start?.content as Y.ContentAny).arr
    // The array the item holds is the result of a copy, not the one Yjs filled by push.
    expect(copies).toContain(values)
  })

  it('a document of clips holds under 4,450 bytes a clip once written and under 4,100 once loaded (untrimmed arrays: 4,860-5,020 and 4,600)', async () => {
    // In a child process with --expose-gc: the heap is measured after full collections.
    const { stdout } = await run(process.execPath, ['--expose-gc', '--import', 'tsx', 'test/helpers/clip-memory.ts', await tempDir()], {
      timeout: 60_000,
    })
    const bytes = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as { applied?: number; loaded?: number }
    expect(bytes.applied).toBeGreaterThan(1000) // measured at all
    expect(bytes.applied).toBeLessThan(4450)
    expect(bytes.loaded).toBeGreaterThan(1000)
    expect(bytes.loaded).toBeLessThan(4100)
  })
})

describe("the index's field stamps", () => {
  it('the fields one change stamped share one stamp, written and loaded; a later change stamps its fields anew', async () => {
    let { sync } = await open()
    const doc = await sync.openDocument('alice').document
    const device = new Y.Doc()
    const created = edit(device, (clips) => clips.set('c1', new Y.Map<unknown>([['content', 'hello'], ['contentType', 'text'], ['createdAt', 1]])))
    await sync.applyUpdate(doc, created.update, author, 'pro')
    const first = doc.entities.get(entityKey(SyncEntityType.CLIP, 'c1'))?.fields ?? {}
    expect(first.content).toBe(first.contentType)
    expect(first.content).toBe(first.createdAt)
    expect(first.content).toMatchObject({ version: 1, deviceId: 'laptop' })

    await sync.applyUpdate(doc, edit(device, (clips) => (clips.get('c1') as Y.Map<unknown>).set('content', 'hi')).update, author, 'pro')
    const second = doc.entities.get(entityKey(SyncEntityType.CLIP, 'c1'))?.fields ?? {}
    expect(second.content).toMatchObject({ version: 2 })
    expect(second.contentType).toBe(first.contentType) // untouched: the first change's stamp
    expect(second.createdAt).toBe(second.contentType)
    const stored = structuredClone(second)

    ;({ sync } = await open(true))
    const loaded = (await sync.openDocument('alice').document).entities.get(entityKey(SyncEntityType.CLIP, 'c1'))?.fields ?? {}
    expect(loaded).toEqual(stored)
    expect(loaded.createdAt).toBe(loaded.contentType)
    expect(loaded.content).not.toBe(loaded.contentType)
  })
})
