/**
 * Merges a stored update log into one Yjs state off the event loop, in a
 * worker thread: a snapshot of an 8 MB document took 70-130 ms of encoding
 * on the loop, every other user waiting meanwhile. The worker applies the
 * log to a fresh document and encodes it (linear, where Y.mergeUpdates over
 * many small updates is not: yjs#710); the log is copied once into one
 * buffer, which is transferred to it, and the state is transferred back.
 * One worker, made on first use and unref'd, serves every snapshot and
 * every large compaction of the server in turn.
 *
 * A compaction names its log (`resume`): the worker keeps the document it
 * merged last for a few logs, and when the log's first entry is the state it
 * produced (the same sequence), it applies only the entries after it. A log
 * compacted again and again as it grows (an import) then costs its new
 * entries and one encoding each time, not its whole history. A state stored
 * at sequence S always holds every update up to S, whoever merged it, so
 * resuming from the same sequence is exact.
 */
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'

/** Documents the worker keeps to resume compactions from (see above). */
const KEPT_DOCUMENTS = 8

// A CommonJS worker from source, so it runs the same from dist/ and from the TypeScript sources in tests.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const Y = require(workerData.yjs)
const KEPT = ${KEPT_DOCUMENTS}
/** key -> { doc, seq }: the document last merged for a log, and the sequence its state was stored at. */
const kept = new Map()
/** The log arrives as one buffer and the offsets where its entries end (one transfer, not one per entry). */
parentPort.on('message', ({ id, joined, ends, resume }) => {
  try {
    let doc
    let from = 0
    const last = resume && kept.get(resume.key)
    if (resume) kept.delete(resume.key)
    if (last && last.seq === resume.firstSeq) {
      doc = last.doc
      from = 1 // the log's first entry is the state this document holds
    } else {
      if (last) last.doc.destroy()
      doc = new Y.Doc({ guid: 'superclip' }) // see ../ydoc.ts
    }
    Y.transact(doc, () => {
      for (let i = from; i < ends.length; i++) Y.applyUpdate(doc, joined.subarray(i === 0 ? 0 : ends[i - 1], ends[i]))
    })
    const state = Y.encodeStateAsUpdate(doc)
    if (resume) {
      kept.set(resume.key, { doc, seq: resume.upToSeq })
      if (kept.size > KEPT) {
        const [oldest] = kept.keys()
        kept.get(oldest).doc.destroy()
        kept.delete(oldest)
      }
    } else doc.destroy()
    parentPort.postMessage({ id, state }, [state.buffer])
  } catch (err) {
    parentPort.postMessage({ id, error: String(err && err.message || err) })
  }
})
`

type Reply = { id: number; state: Uint8Array; error?: undefined } | { id: number; error: string }

/** The log being compacted: `key` names it, its entries run from `firstSeq` (the previous state) to `upToSeq`. */
export interface ResumeFrom {
  key: string
  firstSeq: number
  upToSeq: number
}

export class StateWorker {
  private worker: Worker | undefined
  private nextId = 0
  private readonly waiting = new Map<number, { resolve: (state: Uint8Array) => void; reject: (err: Error) => void }>()

  /** The state of `updates` applied in order, as one update (`resume`: a compaction's log, see above). */
  merge(updates: readonly Uint8Array[], resume?: ResumeFrom): Promise<Uint8Array> {
    const worker = this.start()
    const id = this.nextId++
    const { joined, ends } = join(updates)
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      worker.ref()
      worker.postMessage({ id, joined, ends, resume }, [joined.buffer, ends.buffer])
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

/**
 * The log copied into one buffer of its own, with the offset where each
 * entry ends: transferring it leaves the caller's (LevelDB's) buffers intact,
 * and costs one transfer. Copied and transferred one buffer per entry, a
 * compaction's 4,000 entries held the event loop 5-14 ms beside an import
 * (docs/benchmarks.md).
 */
function join(updates: readonly Uint8Array[]): { joined: Uint8Array<ArrayBuffer>; ends: Float64Array<ArrayBuffer> } {
  let total = 0
  for (const u of updates) total += u.byteLength
  const joined = new Uint8Array(total)
  const ends = new Float64Array(updates.length)
  let at = 0
  updates.forEach((u, i) => {
    joined.set(u, at)
    at += u.byteLength
    ends[i] = at
  })
  return { joined, ends }
}
