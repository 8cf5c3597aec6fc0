/**
 * The repository contract (src/repositories/document.repository.ts): the same
 * tests on every store, LevelDB and PostgreSQL (TEST_DATABASE_URL; skipped
 * with a message when unreachable, failed under REQUIRE_SERVICES=1). Each
 * test gets a fresh store: a temp dir, or a fresh schema.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { CHANGE_ID_TTL_MS, type EntityRecord, type SnapshotMeta } from '../src/models/records.js'
import type { DocumentRepository, DocumentStore, DocumentWrite } from '../src/repositories/document.repository.js'
import { openLevelStore } from '../src/repositories/level.repository.js'
import { openPostgresStore } from '../src/repositories/postgres.repository.js'
import { SyncEntityType, type SyncConflict } from '../src/types/sync.js'
import { createTestSchema, postgresForTests } from './helpers/postgres.js'
import { removeDir, tempDir } from './helpers/server.js'

interface OpenedStore {
  repo: DocumentRepository
  /** Closes the store and removes it (its dir, or its schema). */
  close(): Promise<void>
}

const postgres = await postgresForTests('document repository on PostgreSQL')

const stores: { name: string; skip: boolean; open: () => Promise<OpenedStore> }[] = [
  {
    name: 'LevelDB',
    skip: false,
    async open() {
      const dir = await tempDir()
      const store: DocumentStore = await openLevelStore(dir, { syncWrites: false })
      return {
        repo: store.repo,
        async close() {
          await store.close()
          await removeDir(dir)
        },
      }
    },
  },
  {
    name: 'PostgreSQL',
    skip: !postgres.available,
    async open() {
      const schema = await createTestSchema()
      const store = await openPostgresStore(schema.url)
      return {
        repo: store.repo,
        async close() {
          await store.close()
          await schema.drop()
        },
      }
    },
  },
]

const result = { entityId: 'e', version: 1, serverTimestamp: 1, conflicts: [] }
const write = { clock: 5, entities: [], conflicts: [], changes: [], devices: [] }
const bytes = (...values: number[]) => new Uint8Array(values)
/** Plain Uint8Array views (LevelDB and pg hand out Buffers), for toEqual. */
const views = (list: readonly Uint8Array[]) => list.map((u) => new Uint8Array(u.buffer, u.byteOffset, u.byteLength))
const view = (u: Uint8Array | undefined) => (u ? views([u])[0] : u)
const sameBytes = (a: Uint8Array | undefined, b: Uint8Array) => a !== undefined && Buffer.compare(a, b) === 0
const record = (id: string, timestamp: number, extra: Partial<EntityRecord> = {}) => ({
  record: { type: SyncEntityType.CLIP, id, version: 1, fields: {}, deleted: false, timestamp, deviceId: 'd', ...extra },
  previousTimestamp: undefined as number | undefined,
})
const snapshotMeta = (id: string, clock: number): SnapshotMeta => ({
  id,
  userId: 'alice',
  takenAt: 1000 + clock,
  bytes: 3,
  entityCounts: { clip: 1, folder: 0, tag: 0 } as SnapshotMeta['entityCounts'],
  reason: 'manual',
  clock,
})

describe.each(stores)('DocumentRepository on $name', ({ skip, open }) => {
  let opened: OpenedStore | undefined
  afterEach(async () => {
    await opened?.close()
    opened = undefined
  })
  const repository = async () => (opened = await open()).repo

  it.skipIf(skip)('forgets applied change ids after their TTL, on read and in the store', async () => {
    const repo = await repository()
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
    // Read as of earlier, the old one is still within its TTL: it is still stored...
    expect((await repo.read('alice', now - 2)).changes.map((c) => c.changeId).sort()).toEqual(['fresh', 'old'])
    expect(await repo.pruneChangeIds('alice', now)).toBe(1)
    // ...and no longer once pruned.
    expect((await repo.read('alice', now - 2)).changes.map((c) => c.changeId)).toEqual(['fresh'])
    expect(await repo.pruneChangeIds('alice', now)).toBe(0)
  })

  it.skipIf(skip)('keeps documents apart whatever their ids, and orders entities by timestamp', async () => {
    const repo = await repository()
    // 'a' and 'a\u0000b'-like prefixes must not bleed into each other.
    await repo.write([
      { docId: 'a', ...write, append: { firstSeq: 0, updates: [bytes(1)] }, entities: [record('x', 300), record('y', 100)] },
      { docId: 'ab', ...write, append: { firstSeq: 0, updates: [bytes(2), bytes(3)] }, entities: [record('z', 200)] },
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
    expect(await repo.entitiesAfter('a', 0, 1)).toEqual([{ ts: 100, entityKey: 'clip\u0000y' }])
    // Moving an entity in time drops its old by-time key.
    await repo.write([{ docId: 'a', ...write, entities: [{ ...record('y', 400), previousTimestamp: 100 }] }])
    expect((await repo.entitiesAfter('a', 0, 10)).map((e) => e.ts)).toEqual([300, 400])
  })

  it.skipIf(skip)('reads conflicts stored before the seed names (createdAt, resolution) with the seed names, and marks a dropped client value collected', async () => {
    const repo = await repository()
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
    const resolved = { ...withValue, id: 'k3', resolved: true }
    await repo.write([{ docId: 'alice', ...write, conflicts: [legacy, withValue, resolved] as unknown as SyncConflict[] }])
    const conflicts = (await repo.read('alice')).conflicts.sort((a, b) => a.id.localeCompare(b.id))
    expect(conflicts).toEqual(
      [
        { ...legacy, createdAt: undefined, timestamp: 1234, clientVersion: { ...side, deviceId: 'y2', collected: true } },
        { ...withValue, createdAt: undefined, timestamp: 1234 },
      ].map(({ createdAt: _, ...c }) => c),
    )
  })

  it.skipIf(skip)('reads back a written document: log, clock, entities, devices, summary (kept by a write without one)', async () => {
    const repo = await repository()
    expect(await repo.read('alice')).toEqual({ log: { updates: [], firstSeq: 0, nextSeq: 0, bytes: 0 }, clock: 0, entities: [], conflicts: [], changes: [] })
    expect(await repo.readSummary('alice')).toBeUndefined()
    expect(await repo.exists('alice')).toBe(false)
    const summary = { bytes: 3, entityCounts: { clip: 1, folder: 0, tag: 0 } as SnapshotMeta['entityCounts'], lastActivityAt: 1_700_000_000_123 }
    const device = { deviceId: 'phone', lastSyncTimestamp: 1_700_000_000_100, mode: 'yjs' as const, stateVector: 'AQID', lastSeenAt: 1_700_000_000_200 }
    await repo.write([
      {
        docId: 'alice',
        ...write,
        clock: 1_700_000_000_123,
        append: { firstSeq: 0, updates: [bytes(1, 2), bytes(3)] },
        entities: [record('c1', 1_700_000_000_123, { fields: { content: { version: 1, deviceId: 'phone', timestamp: 1_700_000_000_123 } } })],
        devices: [device],
        summary,
      },
    ])
    const stored = await repo.read('alice')
    expect({ ...stored.log, updates: views(stored.log.updates) }).toEqual({ updates: [bytes(1, 2), bytes(3)], firstSeq: 0, nextSeq: 2, bytes: 3 })
    expect(stored.clock).toBe(1_700_000_000_123)
    expect(stored.entities).toEqual([record('c1', 1_700_000_000_123, { fields: { content: { version: 1, deviceId: 'phone', timestamp: 1_700_000_000_123 } } }).record])
    expect(await repo.readDevice('alice', 'phone')).toEqual(device)
    expect(await repo.readDevice('alice', 'laptop')).toBeUndefined()
    expect(await repo.readSummary('alice')).toEqual(summary)
    expect(await repo.exists('alice')).toBe(true)
    // A later write without a summary keeps it; one with a device overwrites that device.
    await repo.write([{ docId: 'alice', ...write, clock: 1_700_000_000_124, devices: [{ ...device, mode: 'changes', stateVector: undefined }] }])
    expect(await repo.readSummary('alice')).toEqual(summary)
    expect((await repo.read('alice')).clock).toBe(1_700_000_000_124)
    expect(await repo.listDevices('alice')).toEqual([{ deviceId: 'phone', lastSyncTimestamp: 1_700_000_000_100, mode: 'changes', lastSeenAt: 1_700_000_000_200 }])
  })

  it.skipIf(skip)('compaction replaces the entries up to its sequence and leaves later ones', async () => {
    const repo = await repository()
    await repo.write([{ docId: 'alice', ...write, append: { firstSeq: 0, updates: [bytes(1), bytes(2), bytes(3), bytes(4)] } }])
    // Entries 0..2 become the state at 2; entry 3 (appended after) stays.
    await repo.write([{ docId: 'alice', ...write, compact: { firstSeq: 0, upToSeq: 2, state: bytes(9, 9) } }])
    const { log } = await repo.read('alice')
    expect({ ...log, updates: views(log.updates) }).toEqual({ updates: [bytes(9, 9), bytes(4)], firstSeq: 2, nextSeq: 4, bytes: 3 })
    expect(views(await repo.readLogUpTo('alice', 2))).toEqual([bytes(9, 9)])
    expect(views(await repo.readLogUpTo('alice', 3))).toEqual([bytes(9, 9), bytes(4)])
    // Appends continue after it.
    await repo.write([{ docId: 'alice', ...write, append: { firstSeq: 4, updates: [bytes(5)] } }])
    expect((await repo.read('alice')).log).toMatchObject({ firstSeq: 2, nextSeq: 5, bytes: 4 })
  })

  it.skipIf(skip)('readLogUpTo reads the state it was called on, whatever the next write does', async () => {
    const repo = await repository()
    await repo.write([{ docId: 'alice', ...write, append: { firstSeq: 0, updates: [bytes(1), bytes(2), bytes(3)] } }])
    const before = repo.readLogUpTo('alice', 2)
    const compacted = repo.write([{ docId: 'alice', ...write, compact: { firstSeq: 0, upToSeq: 2, state: bytes(7) } }])
    expect(views(await before)).toEqual([bytes(1), bytes(2), bytes(3)])
    await compacted
    expect(views(await repo.readLogUpTo('alice', 2))).toEqual([bytes(7)])
  })

  it.skipIf(skip)('a write is all or nothing: a failing batch stores nothing of any of its documents', async () => {
    const repo = await repository()
    await repo.write([{ docId: 'bob', ...write, append: { firstSeq: 0, updates: [bytes(1)] } }])
    const bad: DocumentWrite[] = [
      { docId: 'alice', ...write, append: { firstSeq: 0, updates: [bytes(1)] }, entities: [record('c1', 10)] },
      { docId: 'bob', ...write, clock: 99, append: { firstSeq: 1, updates: [bytes(2), undefined as unknown as Uint8Array] } },
    ]
    await expect(repo.write(bad)).rejects.toThrow()
    expect(await repo.exists('alice')).toBe(false)
    expect((await repo.read('alice')).entities).toEqual([])
    expect((await repo.read('bob')).log).toMatchObject({ nextSeq: 1, bytes: 1 })
    expect((await repo.read('bob')).clock).toBe(5)
  })

  it.skipIf(skip)('within one batch the last operation on a key wins', async () => {
    const repo = await repository()
    await repo.write([
      { docId: 'alice', ...write, entities: [record('c1', 10), { ...record('c1', 20, { version: 2 }), previousTimestamp: 10 }], devices: [{ deviceId: 'p', lastSyncTimestamp: 1, mode: 'yjs' }] },
      { docId: 'alice', ...write, clock: 6, entities: [record('c2', 30)], removedEntities: [{ entityKey: 'clip\u0000c2', timestamp: 30 }], devices: [{ deviceId: 'p', lastSyncTimestamp: 2, mode: 'yjs' }] },
    ])
    const stored = await repo.read('alice')
    expect(stored.entities.map((e) => [e.id, e.version, e.timestamp])).toEqual([['c1', 2, 20]])
    expect(stored.clock).toBe(6)
    expect(await repo.entitiesAfter('alice', 0, 10)).toEqual([{ ts: 20, entityKey: 'clip\u0000c1' }])
    expect((await repo.readDevice('alice', 'p'))?.lastSyncTimestamp).toBe(2)
  })

  it.skipIf(skip)('removed entities leave the index and the by-time order', async () => {
    const repo = await repository()
    await repo.write([{ docId: 'alice', ...write, entities: [record('c1', 10), record('c2', 20)] }])
    await repo.write([{ docId: 'alice', ...write, removedEntities: [{ entityKey: 'clip\u0000c1', timestamp: 10 }] }])
    expect((await repo.read('alice')).entities.map((e) => e.id)).toEqual(['c2'])
    expect(await repo.entitiesAfter('alice', 0, 10)).toEqual([{ ts: 20, entityKey: 'clip\u0000c2' }])
  })

  it.skipIf(skip)('snapshots: metadata by id, state apart, deletion', async () => {
    const repo = await repository()
    await repo.putSnapshot('alice', snapshotMeta('s2', 2), bytes(2, 2, 2))
    await repo.putSnapshot('alice', snapshotMeta('s1', 1), bytes(1, 1, 1))
    await repo.putSnapshot('bob', snapshotMeta('s9', 9), bytes(9))
    expect(await repo.snapshots('alice')).toEqual([snapshotMeta('s1', 1), snapshotMeta('s2', 2)])
    expect(await repo.snapshot('alice', 's2')).toEqual(snapshotMeta('s2', 2))
    expect(await repo.snapshot('alice', 's9')).toBeUndefined()
    expect(view(await repo.snapshotState('alice', 's1'))).toEqual(bytes(1, 1, 1))
    expect(await repo.snapshotState('alice', 'nope')).toBeUndefined()
    // A user with only snapshots exists.
    expect(await repo.exists('alice')).toBe(true)
    await repo.deleteSnapshots('alice', ['s1', 'nope'])
    await repo.deleteSnapshots('alice', [])
    expect((await repo.snapshots('alice')).map((s) => s.id)).toEqual(['s2'])
    expect(await repo.snapshotState('alice', 's1')).toBeUndefined()
    expect(await repo.snapshots('bob')).toHaveLength(1)
  })

  it.skipIf(skip)('revoked devices: set, read, lifted', async () => {
    const repo = await repository()
    expect(await repo.isRevoked('alice', 'phone')).toBe(false)
    await repo.setRevoked('alice', 'phone', 1234)
    await repo.setRevoked('alice', 'laptop', 5678)
    await repo.setRevoked('alice', 'phone', 2345)
    expect(await repo.isRevoked('alice', 'phone')).toBe(true)
    expect([...(await repo.revokedDevices('alice'))].sort()).toEqual([
      ['laptop', 5678],
      ['phone', 2345],
    ])
    expect(await repo.exists('alice')).toBe(true)
    await repo.setRevoked('alice', 'phone', undefined)
    expect(await repo.isRevoked('alice', 'phone')).toBe(false)
    expect([...(await repo.revokedDevices('alice')).keys()]).toEqual(['laptop'])
  })

  it.skipIf(skip)('pages through every document once, whatever holds it (commits, snapshots, revocations)', async () => {
    const repo = await repository()
    const committed = ['a', 'ab', 'b', 'é', 'user-10', 'user-2', 'Z']
    await repo.write(committed.map((docId) => ({ docId, ...write })))
    await repo.putSnapshot('only-snapshot', snapshotMeta('s', 1), bytes(1))
    await repo.setRevoked('only-revoked', 'phone', 1)
    await repo.setRevoked('a', 'phone', 1)
    const all = [...committed, 'only-snapshot', 'only-revoked'].sort()
    expect((await repo.documentIds(undefined, 100)).sort()).toEqual(all)
    for (const limit of [1, 2, 4]) {
      const seen: string[] = []
      let page: string[]
      for (let cursor: string | undefined; (page = await repo.documentIds(cursor, limit)).length > 0; cursor = page.at(-1)) {
        expect(page.length).toBeLessThanOrEqual(limit)
        seen.push(...page)
      }
      expect(seen.sort()).toEqual(all)
    }
  })

  it.skipIf(skip)('erase removes everything of one document and nothing of another', async () => {
    const repo = await repository()
    const full = (docId: string): DocumentWrite => ({
      docId,
      ...write,
      append: { firstSeq: 0, updates: [bytes(1)] },
      entities: [record('c1', 10)],
      conflicts: [{ id: 'k1', userId: docId, entityType: SyncEntityType.CLIP, entityId: 'c1', field: 'content', serverVersion: { value: 'a', version: 1, deviceId: 'd', timestamp: 1 }, clientVersion: { value: 'b', version: 1, deviceId: 'e', timestamp: 1 }, timestamp: 1, resolved: false }],
      changes: [{ changeId: 'ch1', result, appliedAt: Date.now() }],
      devices: [{ deviceId: 'p', lastSyncTimestamp: 1, mode: 'yjs' }],
      summary: { bytes: 1, entityCounts: { clip: 1, folder: 0, tag: 0 } as SnapshotMeta['entityCounts'], lastActivityAt: 5 },
    })
    await repo.write([full('a'), full('ab')])
    for (const docId of ['a', 'ab']) {
      await repo.putSnapshot(docId, snapshotMeta('s1', 1), bytes(1))
      await repo.setRevoked(docId, 'old-phone', 1)
    }
    const before = await repo.read('ab')
    await repo.erase('a')
    expect(await repo.exists('a')).toBe(false)
    expect(await repo.read('a')).toEqual({ log: { updates: [], firstSeq: 0, nextSeq: 0, bytes: 0 }, clock: 0, entities: [], conflicts: [], changes: [] })
    expect(await repo.readSummary('a')).toBeUndefined()
    expect(await repo.listDevices('a')).toEqual([])
    expect(await repo.snapshots('a')).toEqual([])
    expect(await repo.revokedDevices('a')).toEqual(new Map())
    expect(await repo.entitiesAfter('a', 0, 10)).toEqual([])
    expect(await repo.documentIds(undefined, 10)).toEqual(['ab'])
    expect(await repo.read('ab')).toEqual(before)
    expect(await repo.snapshots('ab')).toHaveLength(1)
    expect(await repo.isRevoked('ab', 'old-phone')).toBe(true)
  })

  it.skipIf(skip)('stores large values and many rows in one batch', async () => {
    const repo = await repository()
    const large = new Uint8Array(6 << 20).map((_, i) => i % 251)
    const small = Array.from({ length: 6000 }, (_, i) => bytes(i & 0xff, i >> 8))
    const entities = Array.from({ length: 3000 }, (_, i) => record(`c${i}`, 1000 + i))
    await repo.write([
      { docId: 'big', ...write, append: { firstSeq: 0, updates: [large, ...small] }, entities },
      { docId: 'other', ...write, append: { firstSeq: 0, updates: [large] } },
    ])
    const stored = await repo.read('big')
    expect(stored.log.nextSeq).toBe(6001)
    expect(stored.log.bytes).toBe(large.byteLength + 2 * 6000)
    expect(sameBytes(stored.log.updates[0], large)).toBe(true)
    expect(view(stored.log.updates[6000])).toEqual(small[5999])
    expect(stored.entities).toHaveLength(3000)
    expect(await repo.entitiesAfter('big', 3998, 10)).toEqual([{ ts: 3999, entityKey: 'clip\u0000c2999' }])
    await repo.putSnapshot('big', snapshotMeta('s', 1), large)
    expect(sameBytes(await repo.snapshotState('big', 's'), large)).toBe(true)
  })
})
