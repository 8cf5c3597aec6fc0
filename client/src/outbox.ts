/**
 * Local edits until the server has acknowledged them (an ok ack means
 * durable on the server, docs/protocol.md "Replies and errors").
 *
 * Each local transaction of the document is one edit with a sequence
 * number. Edits go out in `sync:update`s, those of one tick merged into one;
 * an ok ack settles the edits it carried. After a (re)connect the state-vector
 * diff carries every edit made so far, so its ack settles all of them: an
 * edit whose send was lost with a connection is never resent by itself.
 *
 * Across app restarts the store keeps two counters, `next` and `settled`
 * (every edit below `settled` is acknowledged): edits made offline count as
 * pending in the next run too, until a diff that carries them is acked.
 */
import * as Y from 'yjs'

export interface Batch {
  update: Uint8Array
  seqs: number[]
}

/** The counters as stored (under the key `outbox`). */
export interface OutboxCounters {
  next: number
  settled: number
}

export class Outbox {
  /** The next edit's sequence number. */
  private next = 0
  /** Edits not yet acknowledged, by sequence number. */
  private readonly pending = new Set<number>()
  /** Every edit below it is acknowledged: only moves up, so finding it costs O(1) an edit overall. */
  private settled = 0
  /** Edits made while live and not yet sent: merged into the next batch. */
  private unsent: { seq: number; update: Uint8Array }[] = []
  /** Edits made before the store's counters were read: numbered once they are. */
  private early: Uint8Array[] | undefined = []

  constructor(
    private readonly store: (counters: OutboxCounters) => void,
    private readonly changed: (pending: number) => void,
  ) {}

  /** Restores the counters of the last run: its unacknowledged edits are pending again. */
  restore(saved: Partial<OutboxCounters> | undefined): void {
    const next = saved?.next ?? 0
    const settled = saved?.settled ?? next
    for (let seq = settled; seq < next; seq++) this.pending.add(seq)
    this.settled = settled
    this.next = next
    const early = this.early ?? []
    this.early = undefined
    for (const update of early) this.add(update, false)
    this.save()
  }

  get size(): number {
    return this.pending.size + (this.early?.length ?? 0)
  }

  /**
   * A local edit. `live`: sent on its own by the next batch; otherwise only counted (the next
   * connection's state-vector diff carries it, so it is not kept).
   */
  add(update: Uint8Array, live: boolean): void {
    if (this.early) {
      this.early.push(update)
      this.changed(this.size)
      return
    }
    const seq = this.next++
    this.pending.add(seq)
    if (live) this.unsent.push({ seq, update })
    this.save()
    this.changed(this.pending.size)
  }

  /** The unsent edits merged into one update, or nothing. */
  takeUnsent(): Batch | undefined {
    if (this.unsent.length === 0) return undefined
    const taken = this.unsent
    this.unsent = []
    const update = taken.length === 1 ? taken[0]!.update : Y.mergeUpdates(taken.map((e) => e.update))
    return { update, seqs: taken.map((e) => e.seq) }
  }

  get hasUnsent(): boolean {
    return this.unsent.length > 0
  }

  /**
   * A state-vector diff is about to carry every edit made so far: they are no
   * longer sent one by one. Returns the sequence number its ack settles through.
   */
  coverAll(): number {
    this.unsent = []
    return this.next - 1
  }

  /** An ok ack of a batch. */
  settle(seqs: readonly number[]): void {
    let changed = false
    for (const seq of seqs) changed = this.pending.delete(seq) || changed
    if (changed) this.done()
  }

  /** An ok ack of a diff that carried every edit up to `through`. */
  settleThrough(through: number): void {
    let changed = false
    for (const seq of this.pending) {
      if (seq <= through) changed = this.pending.delete(seq) || changed
    }
    if (changed) this.done()
  }

  private done(): void {
    this.save()
    this.changed(this.pending.size)
  }

  private save(): void {
    while (this.settled < this.next && !this.pending.has(this.settled)) this.settled += 1
    this.store({ next: this.next, settled: this.settled })
  }
}
