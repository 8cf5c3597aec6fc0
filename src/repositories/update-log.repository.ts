/**
 * Each document is an append-only log of Yjs updates under ordered keys
 * (keys.ts). Loading reads the log in order; compaction replaces a prefix of the
 * log by one entry holding the merged state, in one atomic batch that touches
 * only keys at or below the compacted sequence, so entries appended while it
 * runs are never lost. Every write is one atomic LevelDB batch and its errors
 * propagate: a failed write is never reported as stored.
 */
import { metaKey, seqOfUpdateKey, updateKey, updateRange } from './keys.js'
import type { Store } from './level-store.js'

export interface StoredLog {
  /** The log's entries, oldest first. */
  updates: Uint8Array[]
  /** Sequence of the first entry (equals `nextSeq` when the log is empty). */
  firstSeq: number
  nextSeq: number
  bytes: number
  /** The persisted commit clock, 0 for a new document. */
  clock: number
}

/** New log entries of one document, stored at `firstSeq`, `firstSeq + 1`, ... */
export interface LogAppend {
  docId: string
  firstSeq: number
  updates: readonly Uint8Array[]
  clock: number
}

const CLOCK = 'clock'

function encodeClock(ms: number): Uint8Array {
  const bytes = new Uint8Array(8)
  new DataView(bytes.buffer).setFloat64(0, ms)
  return bytes
}

export class UpdateLogRepository {
  constructor(
    private readonly db: Store,
    private readonly options: { syncWrites: boolean },
  ) {}

  async readLog(docId: string): Promise<StoredLog> {
    const updates: Uint8Array[] = []
    let firstSeq = -1
    let lastSeq = -1
    let bytes = 0
    for await (const [key, value] of this.db.iterator(updateRange(docId))) {
      const seq = seqOfUpdateKey(key)
      if (firstSeq < 0) firstSeq = seq
      lastSeq = seq
      updates.push(value)
      bytes += value.byteLength
    }
    const clockBytes = await this.db.get(metaKey(docId, CLOCK))
    const clock = clockBytes ? new DataView(clockBytes.buffer, clockBytes.byteOffset, 8).getFloat64(0) : 0
    const nextSeq = lastSeq + 1
    return { updates, firstSeq: firstSeq < 0 ? 0 : firstSeq, nextSeq, bytes, clock }
  }

  /** Appends the entries of any number of documents in one atomic batch (group commit). */
  async append(appends: readonly LogAppend[]): Promise<void> {
    const batch = this.db.batch()
    for (const a of appends) {
      a.updates.forEach((update, i) => batch.put(updateKey(a.docId, a.firstSeq + i), update))
      batch.put(metaKey(a.docId, CLOCK), encodeClock(a.clock))
    }
    await batch.write({ sync: this.options.syncWrites })
  }

  /**
   * Replaces the entries `firstSeq..upToSeq` by `state` stored at `upToSeq`.
   * `state` must contain every one of them (it is the document's state after
   * applying them); entries above `upToSeq` are not touched.
   */
  async compact(docId: string, firstSeq: number, upToSeq: number, state: Uint8Array): Promise<void> {
    const batch = this.db.batch()
    for (let seq = firstSeq; seq < upToSeq; seq++) batch.del(updateKey(docId, seq))
    batch.put(updateKey(docId, upToSeq), state)
    await batch.write({ sync: this.options.syncWrites })
  }
}
