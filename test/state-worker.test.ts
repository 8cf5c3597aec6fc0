/**
 * The worker that merges stored logs off the event loop (snapshots, large
 * compactions): the state it returns is the log's, and the caller's buffers
 * (LevelDB's) are left intact, as a compaction still counts their bytes.
 */
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { StateWorker } from '../src/services/operators/state-worker.js'

describe('StateWorker', () => {
  const worker = new StateWorker()
  afterEach(() => worker.close())

  it("merges a log of Buffers into its state and leaves the caller's Buffers as they were", async () => {
    const doc = new Y.Doc()
    const log: Buffer[] = []
    // Buffers of their own memory, as LevelDB returns them (Buffer.from would put small ones in Node's shared pool).
    doc.on('update', (u: Uint8Array) => {
      const b = Buffer.alloc(u.byteLength)
      b.set(u)
      log.push(b)
    })
    for (let i = 0; i < 20; i++) doc.getMap('clips').set(`c${i}`, new Y.Map([['content', `clip ${i}`]]))
    const lengths = log.map((u) => u.byteLength)
    const state = await worker.merge(log)
    expect(log.map((u) => u.byteLength)).toEqual(lengths)
    const copy = new Y.Doc()
    Y.applyUpdate(copy, state)
    expect(copy.getMap('clips').toJSON()).toEqual(doc.getMap('clips').toJSON())
  })
})
