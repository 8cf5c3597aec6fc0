/**
 * Cluster mode's ownership of users (protocol §11, docs/architecture.md §4.5):
 * one lease per user's document in the `leases` table (postgres-schema.ts,
 * migration 2), with a fencing token, `epoch`, that only grows.
 *
 * - take: at the document's load, one statement inserts the lease or takes
 *   over a row whose lease expired (or that this node held), incrementing the
 *   epoch. A lease another live node holds fails the load with a
 *   `LeaseHeldError` carrying that node's public URL (a `moved` refusal).
 * - renew: every TTL/3, one statement for every lease held, each only at the
 *   epoch taken. A lease not renewed (another node has it now), or not
 *   confirmed for a whole TTL (PostgreSQL unreachable), is lost.
 * - release: at unload, the lease's expiry is set in the past (the row and its
 *   epoch stay, so epochs never start over).
 * - fence: every write of the documents is checked in its own statement by
 *   `lease_fence` (the documents still leased to this node at their epochs,
 *   row-locked until the write commits), so a node that lost a lease (paused,
 *   partitioned, slow) can never write for that user again: its write fails,
 *   nothing of it is stored or acknowledged, and the document is evicted.
 *
 * Expiry is PostgreSQL's clock only (`clock_timestamp()`): nodes' clocks never
 * have to agree.
 */
import type pg from 'pg'
import { ErrorCode, SyncError } from '../utils/errors.js'
import type { Logger } from '../utils/logger.js'

/** The user's lease is another live node's: the load fails; the client is sent there (`moved`). */
/**
 * The user is owned by another live node. A `SyncError` UNAVAILABLE (retry in a second), so every
 * route and handler that loads a document answers it the same way; sockets are sent to `url` at
 * connect instead (`moved`, ownership.middleware.ts).
 */
export class LeaseHeldError extends SyncError {
  constructor(
    readonly docId: string,
    readonly nodeId: string,
    readonly url: string,
  ) {
    super(ErrorCode.UNAVAILABLE, `this user is served by another node: ${url} (${nodeId})`, { retryAfterMs: 1000 })
    this.name = 'LeaseHeldError'
  }
}

/**
 * A write of a document whose lease this node no longer holds: refused, by
 * this node or by the fence. UNAVAILABLE (the device syncs again, and is sent
 * to the new owner), wherever it surfaces: a commit or an operator's erasure.
 */
export class LeaseLostError extends SyncError {
  constructor(message: string, options?: { cause?: unknown }) {
    super(ErrorCode.UNAVAILABLE, message, { cause: options?.cause, retryAfterMs: 1000 })
    this.name = 'LeaseLostError'
  }
}

/** The SQLSTATE `lease_fence` raises. */
export const FENCE_SQLSTATE = 'SCL01'

export interface ClusterNode {
  nodeId: string
  publicUrl: string
  leaseTtlMs: number
}

/** What a write carries to be fenced: the batch's documents with the epochs this node holds them at. */
export interface FenceParams {
  docIds: string[]
  epochs: string[]
  nodeId: string
}

interface Held {
  epoch: string
  /** Local time (ms) at which the last take or renewal that confirmed it was sent. */
  confirmedAt: number
}

const TTL = '($3::int8 * interval \'1 millisecond\')'

export class PostgresLeases {
  private readonly held = new Map<string, Held>()
  renewals = 0
  losses = 0
  private readonly lostListeners: ((docId: string) => void)[] = []
  private timer: NodeJS.Timeout | undefined
  private renewing: Promise<void> | undefined

  constructor(
    private readonly pool: pg.Pool,
    readonly node: ClusterNode,
    private readonly log?: Logger,
  ) {}

  /** Starts the periodic renewal (every TTL/3). */
  get owned(): number {
    return this.held.size
  }

  start(): void {
    this.timer ??= setInterval(() => void this.renew(), Math.max(50, Math.floor(this.node.leaseTtlMs / 3)))
    this.timer.unref()
  }

  /** Called with the id of every document whose lease was lost (not released). */
  onLost(listener: (docId: string) => void): void {
    this.lostListeners.push(listener)
  }

  /** Whether this node holds (as far as it knows) the document's lease. */
  holds(docId: string): boolean {
    return this.held.has(docId)
  }

  /** Takes the document's lease (see above); throws a `LeaseHeldError` if another live node holds it. */
  async take(docId: string): Promise<void> {
    const { nodeId, publicUrl, leaseTtlMs } = this.node
    for (let attempt = 0; attempt < 3; attempt++) {
      const sent = Date.now()
      const taken = await this.pool.query<{ epoch: string }>(
        `INSERT INTO leases AS l (doc_id, node_id, public_url, epoch, expires_at)
           VALUES ($1, $2, $4, 1, clock_timestamp() + ${TTL})
         ON CONFLICT (doc_id) DO UPDATE
           SET node_id = EXCLUDED.node_id, public_url = EXCLUDED.public_url, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at
           WHERE l.expires_at <= clock_timestamp() OR l.node_id = EXCLUDED.node_id
         RETURNING l.epoch`,
        [docId, nodeId, leaseTtlMs, publicUrl],
      )
      const row = taken.rows[0]
      if (row) {
        this.held.set(docId, { epoch: String(row.epoch), confirmedAt: sent })
        this.log?.debug({ docId, epoch: row.epoch }, 'lease taken')
        return
      }
      const owner = await this.pool.query<{ node_id: string; public_url: string }>(
        'SELECT node_id, public_url FROM leases WHERE doc_id = $1 AND expires_at > clock_timestamp()',
        [docId],
      )
      const o = owner.rows[0]
      if (o) throw new LeaseHeldError(docId, o.node_id, o.public_url)
      // It expired in between: try again.
    }
    throw new Error(`could not take the lease of document ${docId}`)
  }

  /** Releases the document's lease (its expiry set in the past; the epoch stays). Never throws. */
  async release(docId: string): Promise<void> {
    const held = this.held.get(docId)
    if (!held) return
    this.held.delete(docId)
    // A renewal already sent may still carry this lease: after it, or it would extend the lease just released.
    await this.renewing?.catch(() => undefined)
    try {
      await this.pool.query("UPDATE leases SET expires_at = '-infinity' WHERE doc_id = $1 AND node_id = $2 AND epoch = $3", [
        docId,
        this.node.nodeId,
        held.epoch,
      ])
    } catch (err) {
      this.log?.warn({ err, docId }, 'releasing a lease failed; it expires by itself')
    }
  }

  /** The fence of a write of `docIds`; throws a `LeaseLostError` if one of them is not held. */
  fence(docIds: readonly string[]): FenceParams {
    const epochs: string[] = []
    for (const docId of docIds) {
      const held = this.held.get(docId)
      if (!held) throw new LeaseLostError(`this node does not hold the lease of document ${docId}`)
      epochs.push(held.epoch)
    }
    return { docIds: [...docIds], epochs, nodeId: this.node.nodeId }
  }

  /** A write failed its fence: find out which leases are lost now rather than at the next renewal. */
  fenceFailed(): void {
    void this.renew()
  }

  /** Renews every lease held; those not renewed are lost. Single-flight. */
  renew(): Promise<void> {
    this.renewing ??= this.renewOnce().finally(() => (this.renewing = undefined))
    return this.renewing
  }

  /** Releases every lease held (at shutdown, after the documents are unloaded). */
  async releaseAll(): Promise<void> {
    clearInterval(this.timer)
    this.timer = undefined
    await Promise.all([...this.held.keys()].map((docId) => this.release(docId)))
  }

  private async renewOnce(): Promise<void> {
    const held = [...this.held]
    if (held.length === 0) return
    const sent = Date.now()
    let renewed: Set<string>
    try {
      const { rows } = await this.pool.query<{ doc_id: string }>(
        `UPDATE leases l SET expires_at = clock_timestamp() + ${TTL}
           FROM unnest($1::text[], $2::int8[]) AS h(doc_id, epoch)
         WHERE l.doc_id = h.doc_id AND l.epoch = h.epoch AND l.node_id = $4
         RETURNING l.doc_id`,
        [held.map(([docId]) => docId), held.map(([, h]) => h.epoch), this.node.leaseTtlMs, this.node.nodeId],
      )
      renewed = new Set(rows.map((r) => r.doc_id))
      this.renewals += renewed.size
    } catch (err) {
      // Unconfirmed for a whole TTL: another node may have taken them over. (Writes are fenced anyway.)
      const expired = held.filter(([, h]) => sent - h.confirmedAt >= this.node.leaseTtlMs)
      this.log?.warn({ err, leases: held.length, expired: expired.length }, 'renewing the leases failed')
      for (const [docId, h] of expired) this.lose(docId, h)
      return
    }
    for (const [docId, h] of held) {
      if (renewed.has(docId)) {
        if (this.held.get(docId) === h) h.confirmedAt = sent
      } else this.lose(docId, h)
    }
  }

  private lose(docId: string, h: Held): void {
    if (this.held.get(docId) !== h) return // released or taken again meanwhile
    this.held.delete(docId)
    this.losses += 1
    this.log?.warn({ docId, epoch: h.epoch }, 'lease lost: the document is dropped and its sockets closed')
    for (const listener of this.lostListeners) listener(docId)
  }
}
