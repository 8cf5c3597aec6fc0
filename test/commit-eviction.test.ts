/**
 * What happens to a document dropped from memory (an update refused after it
 * was applied, or a failed write), at the service level over a real store:
 * what it applied and refused never reaches the disk, what it acknowledged
 * is never lost by its reload, and a resent change id is not acknowledged
 * before the first one is durable. Also: an update whose items chain through
 * each other's origins is inspected in linear time.
 */
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { LevelDocumentRepository } from '../src/repositories/level.repository.js'
import type { SyncDocument } from '../src/services/sync-document.js'
import { SyncEntityType, SyncOperationType } from '../src/types/sync.js'
import { useLevelServices } from './helpers/level-services.js'

const author = { userId: 'u1', deviceId: 'd1' }

/** One client's updates, one per transaction: tag `t<i>` created, then named, for i < `count`. */
function tagUpdates(count: number): Uint8Array[] {
  const client = new Y.Doc()
  const updates: Uint8Array[] = []
  client.on('update', (u: Uint8Array) => updates.push(u))
  for (let i = 0; i < count; i++) {
    const tag = new Y.Map<unknown>()
    client.getMap('tags').set(`t${i}`, tag)
    tag.set('name', `n${i}`)
  }
  return updates
}

/** The next `tick` of `doc` throws: the update being settled fails after it was applied. */
function failNextTick(doc: SyncDocument): void {
  const tick = doc.tick.bind(doc)
  doc.tick = () => {
    doc.tick = tick
    throw new Error('injected failure after apply')
  }
}

describe('documents dropped from memory', () => {
  const level = useLevelServices({ docIdleMs: 60_000, compactMaxUpdates: 1000, compactMaxBytes: 1 << 30 })

  async function open(compactMaxUpdates = 1000) {
    const services = await level.open({ changes: { compactMaxUpdates } })
    const repo = (services.sync as unknown as { repo: LevelDocumentRepository }).repo
    return { sync: services.sync, repo, doc: await services.sync.openDocument('u1').document }
  }

  async function tagsOnDisk(): Promise<string[]> {
    const stored = await new LevelDocumentRepository(level.store, { syncWrites: false }).read('u1')
    const doc = new Y.Doc()
    for (const u of stored.log.updates) Y.applyUpdate(doc, u)
    return [...doc.getMap('tags').keys()].sort()
  }

  it('a document dropped for good (a lost lease) has its queued commits refused; another document in the same batch is stored', async () => {
    const { sync } = await open()
    const [u1doc, u2doc] = await Promise.all([sync.openDocument('u1').document, sync.openDocument('u2').document])
    const [t0] = tagUpdates(1) as [Uint8Array]
    // Both queued in this turn, for the same group commit; then u1 may no longer be written.
    const lost = sync.applyUpdate(u1doc, t0, author)
    const kept = sync.applyUpdate(u2doc, t0, { userId: 'u2', deviceId: 'd2' })
    const committer = (sync as unknown as { committer: { drop(doc: SyncDocument, cause: unknown): void } }).committer
    committer.drop(u1doc, new Error('lease lost'))
    await expect(lost).rejects.toMatchObject({ code: 'UNAVAILABLE' })
    expect(await kept).toMatchObject({ stored: true })
    await level.services.drain()
    const repo = new LevelDocumentRepository(level.store, { syncWrites: false })
    expect((await repo.read('u1')).log.updates).toEqual([])
    expect((await repo.read('u2')).log.updates).toHaveLength(1)
  })

  it('an update refused after it was applied is not stored by the compaction of its batch', async () => {
    const { sync, doc } = await open(3)
    const [t0, t0name, t1, t1name, t2] = tagUpdates(3) as [Uint8Array, Uint8Array, Uint8Array, Uint8Array, Uint8Array]
    for (const u of [t0, t0name, t1]) await sync.applyUpdate(doc, u, author)
    // The next batch is due for compaction: a valid update queued, then one refused after it was applied.
    const valid = sync.applyUpdate(doc, t1name, author)
    failNextTick(doc)
    await expect(sync.applyUpdate(doc, t2, author)).rejects.toMatchObject({ code: 'INVALID_UPDATE' })
    expect((await valid).stored).toBe(true)
    await level.services.drain()
    expect(await tagsOnDisk()).toEqual(['t0', 't1'])
    const reloaded = await sync.openDocument('u1').document
    expect((reloaded.doc.getMap('tags').get('t1') as Y.Map<unknown>).get('name')).toBe('n1')
    expect(reloaded.doc.getMap('tags').has('t2')).toBe(false)
  })

  it('a document reloaded right after it was dropped waits for its acknowledged writes, and appends after them', async () => {
    const { sync, repo, doc } = await open()
    const write = repo.write.bind(repo)
    repo.write = async (writes) => {
      await new Promise((resolve) => setTimeout(resolve, 30))
      return write(writes)
    }
    const [t0, t0name, t1] = tagUpdates(2) as [Uint8Array, Uint8Array, Uint8Array]
    await sync.applyUpdate(doc, t0, author)
    const valid = sync.applyUpdate(doc, t0name, author)
    failNextTick(doc)
    await expect(sync.applyUpdate(doc, t1, author)).rejects.toMatchObject({ code: 'INVALID_UPDATE' })
    // A reconnecting socket loads the document again while t0's name is still being written.
    const reloaded = await sync.openDocument('u1').document
    expect((await valid).stored).toBe(true)
    expect((reloaded.doc.getMap('tags').get('t0') as Y.Map<unknown>).get('name')).toBe('n0')
    const other = new Y.Doc()
    other.getMap('tags').set('x', new Y.Map())
    await sync.applyUpdate(reloaded, Y.encodeStateAsUpdate(other), author)
    await level.services.drain()
    expect(await tagsOnDisk()).toEqual(['t0', 'x'])
    const stored = await new LevelDocumentRepository(level.store, { syncWrites: false }).read('u1')
    const check = new Y.Doc()
    for (const u of stored.log.updates) Y.applyUpdate(check, u)
    expect((check.getMap('tags').get('t0') as Y.Map<unknown>).get('name')).toBe('n0')
  })

  it('a change id resent while its first write is in flight is not acknowledged before that write; both fail with it', async () => {
    const { sync, repo, doc } = await open()
    const write = repo.write.bind(repo)
    repo.write = async () => {
      repo.write = write
      await new Promise((resolve) => setTimeout(resolve, 30))
      throw new Error('injected I/O error')
    }
    const change = {
      id: 'change-1',
      entityType: SyncEntityType.TAG,
      entityId: 'tag-1',
      operationType: SyncOperationType.CREATE,
      data: { name: 'first' },
      version: 0,
    }
    const first = sync.applyChange(doc, change, author)
    const resend = sync.applyChange(doc, change, author)
    await expect(first).rejects.toMatchObject({ code: 'UNAVAILABLE' })
    await expect(resend).rejects.toMatchObject({ code: 'UNAVAILABLE' })
  })

  it('an update whose items chain through each other\'s origins is inspected in linear time (was quadratic: 20 s for 2 MB)', { timeout: 20_000 }, async () => {
    const { sync, doc } = await open()
    // A template body written alternately by two clients, 1,000 characters at a time.
    const a = new Y.Doc()
    const template = new Y.Map<unknown>()
    a.getMap('templates').set('e', template)
    template.set('body', new Y.Text())
    await sync.applyUpdate(doc, Y.encodeStateAsUpdate(a), author, 'pro')
    const before = Y.encodeStateVector(a)
    const b = new Y.Doc()
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    const chunk = 'x'.repeat(1000)
    for (let i = 0; i < 2000; i++) {
      const [from, to] = i % 2 ? [b, a] : [a, b]
      const body = (from.getMap('templates').get('e') as Y.Map<unknown>).get('body') as Y.Text
      body.insert(body.length, chunk)
      Y.applyUpdate(to, Y.encodeStateAsUpdate(from, Y.encodeStateVector(to)))
    }
    const update = Y.encodeStateAsUpdate(a, before)
    expect(update.byteLength).toBeGreaterThan(2_000_000)
    expect((await sync.applyUpdate(doc, update, author, 'pro')).stored).toBe(true)
    const body = (doc.doc.getMap('templates').get('e') as Y.Map<unknown>).get('body') as Y.Text
    expect(body.length).toBe(2_000_000)
  })
})
