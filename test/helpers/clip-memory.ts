/**
 * Run as `node --expose-gc --import tsx test/helpers/clip-memory.ts <dir>`
 * (test/document-memory.test.ts): writes CLIPS clips into one user's
 * document through the service's write path, each in its own update as a
 * device sends them, over LevelDB in `<dir>`, then loads the document again
 * from disk. Prints `{"applied": bytes, "loaded": bytes}`: the live heap each
 * clip added, after full collections.
 */
import * as Y from 'yjs'
import { openStore } from '../../src/repositories/level-store.js'
import { LevelDocumentRepository } from '../../src/repositories/level.repository.js'
import { createServices } from '../../src/services/index.js'

const CLIPS = 3000
const silent = { error() {}, warn() {}, info() {}, debug() {} }
const policy = { docIdleMs: 600_000, compactMaxUpdates: 4000, compactMaxBytes: 4 << 20 }
const author = { userId: 'alice', deviceId: 'laptop' }

const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with --expose-gc')
/** After full collections, each in its own turn (what a turn holds weakly is kept until it ends). */
const heapUsed = async (): Promise<number> => {
  for (let i = 0; i < 3; i++) {
    await new Promise((resolve) => setImmediate(resolve))
    gc()
  }
  return process.memoryUsage().heapUsed
}

/** The clips, from a device's document that is gone once they are written. */
async function writeClips(target: unknown): Promise<void> {
  const device = new Y.Doc()
  const writes: Promise<unknown>[] = []
  for (let i = 0; i < CLIPS; i++) {
    const sv = Y.encodeStateVector(device)
    const clip = new Y.Map<unknown>([
      ['content', `clip ${i}: some copied text`],
      ['contentType', 'text'],
      ['title', `clip ${i}`],
      ['source', 'browser'],
      ['folderId', null],
      ['pinned', false],
      ['favorite', i % 2 === 0],
      ['createdAt', 1_700_000_000_000 + i],
    ])
    device.getMap('clips').set(`clip-${i}`, clip)
    writes.push(services.sync.applyUpdate(target as never, Y.encodeStateAsUpdate(device, sv), author, 'pro'))
  }
  await Promise.all(writes)
}

const store = await openStore(process.argv[2] ?? '')
const repo = new LevelDocumentRepository(store, { syncWrites: false })
let services = createServices(repo, policy, silent)
/** The document measured: held here while the heap is read, so that it counts whatever the services do with it. */
const held: unknown[] = []
const before = await heapUsed()
held.push(await services.sync.openDocument('alice').document)
await writeClips(held[0])
const applied = ((await heapUsed()) - before) / CLIPS
await services.close()
held.length = 0

services = createServices(repo, policy, silent)
const beforeLoad = await heapUsed()
held.push(await services.sync.openDocument('alice').document)
const loaded = ((await heapUsed()) - beforeLoad) / CLIPS
await services.close()
await store.close()
console.log(JSON.stringify({ applied: Math.round(applied), loaded: Math.round(loaded), documents: held.length }))
