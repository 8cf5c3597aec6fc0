import * as Y from 'yjs'
import { afterEach, describe, expect, it } from 'vitest'
import { openStore, type Store } from '../src/repositories/level-store.js'
import { UpdateLogRepository } from '../src/repositories/update-log.repository.js'
import { Compactor } from '../src/services/compactor.js'
import { createServices, type Services } from '../src/services/index.js'
import { YjsDevice } from './helpers/device.js'
import { startServer, tempDir, tokenFor, type TestServer } from './helpers/server.js'

const silent = { error() {}, warn() {}, info() {}, debug() {} }

function clipUpdate(doc: Y.Doc, id: string): Uint8Array {
  const sv = Y.encodeStateVector(doc)
  doc.getMap('clips').set(id, new Y.Map([['content', `content of ${id}`]]))
  return Y.encodeStateAsUpdate(doc, sv)
}

describe('log compaction keeps every update', () => {
  let store: Store | undefined
  let services: Services | undefined
  let server: TestServer | undefined
  afterEach(async () => {
    await services?.close()
    await store?.close()
    await server?.stop()
    services = store = server = undefined
  })

  it('compacts once past the count threshold, and a reload has everything', async () => {
    const dir = await tempDir()
    const policy = { syncWrites: false, docIdleMs: 60_000, compactMaxUpdates: 50, compactMaxBytes: 1 << 30 }
    store = await openStore(dir)
    services = createServices(store, policy, silent)
    const doc = await services.sync.openDocument('alice')
    const client = new Y.Doc()
    for (let i = 0; i < 400; i++) await services.sync.submitUpdate(doc, clipUpdate(client, `c${i}`), 'test')
    expect(doc.logCount).toBeLessThanOrEqual(51)
    await services.close()
    const log = await new UpdateLogRepository(store, { syncWrites: false }).readLog('alice')
    expect(log.updates.length).toBeLessThanOrEqual(51)
    const reloaded = new Y.Doc()
    for (const u of log.updates) Y.applyUpdate(reloaded, u)
    expect(reloaded.getMap('clips').size).toBe(400)
  })

  it('updates appended while a compaction is being written are kept', async () => {
    const dir = await tempDir()
    const policy = { syncWrites: true, docIdleMs: 60_000, compactMaxUpdates: 1_000_000, compactMaxBytes: 1 << 30 }
    store = await openStore(dir)
    services = createServices(store, policy, silent)
    const doc = await services.sync.openDocument('alice')
    const client = new Y.Doc()
    for (let i = 0; i < 300; i++) await services.sync.submitUpdate(doc, clipUpdate(client, `before-${i}`), 'test')
    expect(doc.logCount).toBe(300)

    // The compaction batch and these appends are in flight at the same time.
    const repo = new UpdateLogRepository(store, { syncWrites: true })
    const compaction = new Compactor(repo, { compactMaxUpdates: 1, compactMaxBytes: 1 }, silent).compact(doc)
    expect(doc.compacting).toBe(true)
    const during = Array.from({ length: 100 }, (_, i) =>
      services?.sync.submitUpdate(doc, clipUpdate(client, `during-${i}`), 'test'),
    )
    await Promise.all([compaction, ...during])
    expect(doc.firstSeq).toBe(299)
    expect(doc.logCount).toBe(101)

    await services.close()
    const log = await repo.readLog('alice')
    expect(log.updates).toHaveLength(101)
    const reloaded = new Y.Doc()
    for (const u of log.updates) Y.applyUpdate(reloaded, u)
    const keys = [...reloaded.getMap('clips').keys()]
    expect(keys).toHaveLength(400)
    expect(keys.filter((k) => k.startsWith('during-'))).toHaveLength(100)
  })

  it('through the server: a compacted document restarts whole', async () => {
    const dir = await tempDir()
    server = await startServer(dir, { compactMaxUpdates: 20 })
    const a = await YjsDevice.connect(server.url, await tokenFor('alice'), 'phone')
    for (let i = 0; i < 150; i++) a.addClip(`c${i}`, `clip ${i}`)
    a.clips().delete('c3') // deletions survive compaction too
    await a.flushed()
    expect(server.services.registry.peek('alice')?.logCount).toBeLessThanOrEqual(21)
    a.close()
    await server.stop()
    server = await startServer(dir, { compactMaxUpdates: 20 })
    const b = await YjsDevice.connect(server.url, await tokenFor('alice'), 'laptop')
    expect(b.clips().size).toBe(149)
    expect(b.clips().has('c3')).toBe(false)
    b.close()
  })

  it('a log over the threshold at load is compacted right after loading', async () => {
    const dir = await tempDir()
    server = await startServer(dir, { compactMaxUpdates: 1_000_000 })
    const a = await YjsDevice.connect(server.url, await tokenFor('alice'), 'phone')
    for (let i = 0; i < 200; i++) a.addClip(`c${i}`, `clip ${i}`)
    await a.flushed()
    a.close()
    await server.stop()
    server = await startServer(dir, { compactMaxUpdates: 100 })
    const b = await YjsDevice.connect(server.url, await tokenFor('alice'), 'laptop')
    expect(b.clips().size).toBe(200)
    const doc = server.services.registry.peek('alice')
    const deadline = Date.now() + 10_000
    while ((doc?.logCount ?? 0) > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
    expect(doc?.logCount).toBe(1)
    b.close()
  })
})
