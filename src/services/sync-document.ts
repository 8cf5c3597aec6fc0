import * as Y from 'yjs'
import type { StoredLog } from '../repositories/update-log.repository.js'

/**
 * One user's loaded document and the bookkeeping of its update log.
 * Invariant: the in-memory `doc` holds exactly the log entries
 * `firstSeq..appliedSeq`; entries above `appliedSeq` are being written.
 */
export class SyncDocument {
  readonly doc = new Y.Doc()
  /** Sequence the next appended log entry gets. */
  nextSeq: number
  firstSeq: number
  appliedSeq: number
  /** Bytes of the applied log entries (`firstSeq..appliedSeq`). */
  logBytes: number
  /** The commit clock (ms): strictly increasing, persisted with every commit. */
  clock: number
  /** Updates submitted and not yet settled; a document is not unloaded while any are. */
  pendingWrites = 0
  compacting = false

  constructor(
    readonly id: string,
    log: StoredLog,
  ) {
    this.firstSeq = log.firstSeq
    this.nextSeq = log.nextSeq
    this.appliedSeq = log.nextSeq - 1
    this.logBytes = log.bytes
    this.clock = log.clock
    Y.transact(
      this.doc,
      () => {
        for (const update of log.updates) Y.applyUpdate(this.doc, update)
      },
      { source: 'storage' },
    )
  }

  get logCount(): number {
    return this.appliedSeq - this.firstSeq + 1
  }

  /** Next commit clock value: `max(wall clock, previous + 1)` (PROTOCOL section 5). */
  tick(): number {
    this.clock = Math.max(Date.now(), this.clock + 1)
    return this.clock
  }
}
