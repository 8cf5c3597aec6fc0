/**
 * Merges a stored update log into one Yjs state off the event loop, in a
 * worker thread: a snapshot of an 8 MB document took 70-130 ms of encoding
 * on the loop, every other user waiting meanwhile. The worker applies the
 * log to a fresh document and encodes it (linear, where Y.mergeUpdates over
 * many small updates is not: yjs#710); the buffers move to and from it
 * without a copy. One worker, made on first use and unref'd, serves every
 * snapshot of the server in turn.
 */
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

// A CommonJS worker from source, so it runs the same from dist/ and from the TypeScript sources in tests.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Y = require(workerData.yjs)
parentPort.on('message', ({ id, updates }) => {
  try {
    const doc = new Y.Doc({ guid: 'superclip' }) // see ../ydoc.ts
    Y.transact(doc, () => { for (const u of updates) Y.applyUpdate(doc, u) })
    const state = Y.encodeStateAsUpdate(doc)
    doc.destroy()
    parentPort.postMessage({ id, state }, [state.buffer])
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) })
  }
})
`

type Reply = { id: number; state: Uint8Array; error?: undefined } | { id: number; error: string }

export class StateWorker {
  private worker: Worker | undefined
  private nextId = 0
  private readonly waiting = new Map<number, { resolve: (state: Uint8Array) => void; reject: (err: Error) => void }>()

  /** The state of `updates` applied in order, as one update. */
  merge(updates: readonly Uint8Array[]): Promise<Uint8Array> {
    const worker = this.start()
    const id = this.nextId++
    // Copies into buffers of their own, so that transferring them leaves the caller's (LevelDB's) intact:
    // `new Uint8Array(u)` copies, where a Buffer's slice() is a view whose whole buffer would be transferred.
    const owned = updates.map((u) => new Uint8Array(u))
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      worker.ref()
      worker.postMessage({ id, updates: owned }, owned.map((u) => u.buffer))
    })
  }

  async close(): Promise<void> {
    const worker = this.worker
    this.worker = undefined
    await worker?.terminate()
  }

  private start(): Worker {
    if (this.worker) return this.worker
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { yjs: createRequire(import.meta.url).resolve('yjs') } })
    worker.unref()
    worker.on('message', (reply: Reply) => {
      const waiter = this.waiting.get(reply.id)
      this.waiting.delete(reply.id)
      if (this.waiting.size === 0) worker.unref()
      if (reply.error !== undefined) waiter?.reject(new Error(`merging the log failed: ${reply.error}`))
      else waiter?.resolve(reply.state)
    })
    worker.on('error', (err) => this.fail(err))
    worker.on('exit', (code) => this.fail(new Error(`the snapshot worker exited (${code})`)))
    this.worker = worker
    return worker
  }

  private fail(err: Error): void {
    this.worker = undefined
    for (const { reject } of this.waiting.values()) reject(err)
    this.waiting.clear()
  }
}
