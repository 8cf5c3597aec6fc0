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

  it("merges entries that are views into one shared buffer (Node's Buffer pool), each read at its own offset", async () => {
    const doc = new Y.Doc()
    const log: Uint8Array[] = []
    doc.on('update', (u: Uint8Array) => log.push(u))
    for (let i = 0; i < 20; i++) doc.getMap('clips').set(`c${i}`, new Y.Map([['content', `clip ${i}`]]))
    // All the entries in one ArrayBuffer, each a view at its offset, with bytes no Yjs could read around them.
    const shared = new Uint8Array(log.reduce((n, u) => n + u.byteLength + 2, 2)).fill(255)
    let at = 2
    const views = log.map((u) => {
      shared.set(u, at)
      const view = shared.subarray(at, at + u.byteLength)
      at += u.byteLength + 2
      return view
    })
    const state = await worker.merge(views)
    expect(shared.buffer.byteLength).toBeGreaterThan(0) // not transferred away
    const copy = new Y.Doc()
    Y.applyUpdate(copy, state)
    expect(copy.getMap('clips').toJSON()).toEqual(doc.getMap('clips').toJSON())
  })

  it('resumes a compaction of the same log from the document it merged last, and merges anything else from scratch', async () => {
    const doc = new Y.Doc()
    const log: Uint8Array[] = []
    doc.on('update', (u: Uint8Array) => log.push(u))
    for (let i = 0; i < 20; i++) doc.getMap('clips').set(`c${i}`, new Y.Map([['content', `clip ${i}`]]))
    const clipsOf = (state: Uint8Array) => {
      const copy = new Y.Doc()
      Y.applyUpdate(copy, state)
      return copy.getMap('clips').toJSON()
    }
    const first = await worker.merge(log.slice(0, 10), { key: 'alice#1', firstSeq: 0, upToSeq: 9 })
    expect(Object.keys(clipsOf(first))).toHaveLength(10)
    // The log now starts with that state at seq 9. Resumed, the worker does not even read it: shown with bytes no Yjs could read.
    const unreadable = new Uint8Array([255, 255, 255])
    const second = await worker.merge([unreadable, ...log.slice(10)], { key: 'alice#1', firstSeq: 9, upToSeq: 19 })
    expect(clipsOf(second)).toEqual(doc.getMap('clips').toJSON())
    // Another first sequence, or another log: from scratch, so the first entry is read.
    await expect(worker.merge([unreadable, ...log.slice(10)], { key: 'alice#1', firstSeq: 5, upToSeq: 19 })).rejects.toThrow()
    await expect(worker.merge([unreadable, ...log.slice(10)], { key: 'alice#2', firstSeq: 19, upToSeq: 29 })).rejects.toThrow()
    expect(clipsOf(await worker.merge([second], { key: 'alice#2', firstSeq: 19, upToSeq: 19 }))).toEqual(doc.getMap('clips').toJSON())
  })
})
