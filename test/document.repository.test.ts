import { afterEach, describe, expect, it } from 'vitest'
import { CHANGE_ID_TTL_MS } from '../src/models/records.js'
import { DocumentRepository } from '../src/repositories/document.repository.js'
import { Section, sectionRange } from '../src/repositories/keys.js'
import { openStore, type Store } from '../src/repositories/level-store.js'
import { SyncEntityType, type SyncConflict } from '../src/types/sync.js'
import { tempDir } from './helpers/server.js'

const result = { entityId: 'e', version: 1, serverTimestamp: 1, conflicts: [] }
const write = { clock: 5, entities: [], conflicts: [], changes: [], devices: [] }

describe('DocumentRepository on LevelDB', () => {
  let store: Store | undefined
  afterEach(async () => {
    await store?.close()
  })

  it('forgets applied change ids after their TTL, on read and on disk', async () => {
    store = await openStore(await tempDir())
    const repo = new DocumentRepository(store, { syncWrites: false })
    const now = Date.now()
    await repo.write([
      {
        docId: 'alice',
        ...write,
        changes: [
          { changeId: 'old', result, appliedAt: now - CHANGE_ID_TTL_MS - 1 },
          { changeId: 'fresh', result, appliedAt: now - 1000 },
        ],
      },
    ])
    expect((await repo.read('alice', now)).changes.map((c) => c.changeId)).toEqual(['fresh'])
    expect(await repo.pruneChangeIds('alice', now)).toBe(1)
    const left: Uint8Array[] = []
    for await (const key of store.keys(sectionRange('alice', Section.CHANGE_ID))) left.push(key)
    expect(left).toHaveLength(1)
  })

  it('keeps documents apart whatever their ids, and orders entities by timestamp', async () => {
    store = await openStore(await tempDir())
    const repo = new DocumentRepository(store, { syncWrites: false })
    const record = (id: string, timestamp: number) => ({
      record: { type: SyncEntityType.CLIP, id, version: 1, fields: {}, deleted: false, timestamp, deviceId: 'd' },
      previousTimestamp: undefined,
    })
    // 'a' and 'a\u0000b'-like prefixes must not bleed into each other.
    await repo.write([
      { docId: 'a', ...write, append: { firstSeq: 0, updates: [new Uint8Array([1])] }, entities: [record('x', 300), record('y', 100)] },
      { docId: 'ab', ...write, append: { firstSeq: 0, updates: [new Uint8Array([2]), new Uint8Array([3])] }, entities: [record('z', 200)] },
    ])
    const a = await repo.read('a')
    expect(a.log).toMatchObject({ firstSeq: 0, nextSeq: 1, bytes: 1 })
    expect(a.entities.map((e) => e.id).sort()).toEqual(['x', 'y'])
    expect((await repo.read('ab')).log.nextSeq).toBe(2)
    expect(await repo.entitiesAfter('a', 0, 10)).toEqual([
      { ts: 100, entityKey: 'clip\u0000y' },
      { ts: 300, entityKey: 'clip\u0000x' },
    ])
    expect(await repo.entitiesAfter('a', 100, 10)).toEqual([{ ts: 300, entityKey: 'clip\u0000x' }])
    // Moving an entity in time drops its old by-time key.
    await repo.write([{ docId: 'a', ...write, entities: [{ ...record('y', 400), previousTimestamp: 100 }] }])
    expect((await repo.entitiesAfter('a', 0, 10)).map((e) => e.ts)).toEqual([300, 400])
  })

  it('reads conflicts stored before the seed names (createdAt, resolution) with the seed names, and marks a dropped client value collected', async () => {
    store = await openStore(await tempDir())
    const repo = new DocumentRepository(store, { syncWrites: false })
    const side = { version: 2, deviceId: 'd', timestamp: 10 }
    const legacy = {
      id: 'k1',
      userId: 'alice',
      entityType: SyncEntityType.CLIP,
      entityId: 'c1',
      field: 'content',
      serverVersion: { value: 'kept', ...side },
      // Written with `value: undefined`, which JSON dropped.
      clientVersion: { ...side, deviceId: 'y2' },
      createdAt: 1234,
      resolved: false,
    }
    const withValue = { ...legacy, id: 'k2', clientVersion: { value: 'lost', ...side } }
    await repo.write([{ docId: 'alice', ...write, conflicts: [legacy, withValue] as unknown as SyncConflict[] }])
    const conflicts = (await repo.read('alice')).conflicts.sort((a, b) => a.id.localeCompare(b.id))
    expect(conflicts).toEqual([
      { ...legacy, createdAt: undefined, timestamp: 1234, clientVersion: { ...side, deviceId: 'y2', collected: true } },
      { ...withValue, createdAt: undefined, timestamp: 1234 },
    ].map(({ createdAt: _, ...c }) => c))
  })
})
