/**
 * The user's open conflicts (docs/protocol.md, conflicts), as the server
 * reports them: each new or resolved `sync:conflict`, and the whole list at
 * every completed sync (`sync:conflicts`), so conflicts raised while this
 * device was away show up too.
 */
import { SyncClientError } from './errors.js'
import type { ConflictRecord, Reply } from './protocol.js'
import type { Json } from './schema.js'

export type Winner = 'server' | 'client' | 'merged'

export interface ConflictResolution {
  conflictId: string
  entityId: string
  version: number
  serverTimestamp: number
}

/** A conflict as the client surfaces it: the server's record, and `resolve()`. */
export interface Conflict extends ConflictRecord {
  /**
   * Writes the winning value (`merged`: `mergedData[field]`) as a new change
   * every device receives. Waits for a connection; rejects with the server's
   * refusal (`CONFLICT_NOT_FOUND` when another device resolved it first).
   */
  resolve(winningVersion: Winner, mergedData?: Record<string, Json>): Promise<ConflictResolution>
}

export type Resolver = (payload: { conflictId: string; winningVersion: Winner; mergedData?: Record<string, Json> }) => Promise<Reply>

export class Conflicts {
  private readonly open = new Map<string, Conflict>()

  constructor(
    private readonly resolver: Resolver,
    private readonly emit: (conflict: Conflict) => void,
  ) {}

  list(): Conflict[] {
    return [...this.open.values()].sort((a, b) => a.timestamp - b.timestamp)
  }

  /** A `sync:conflict` from the server: a new one, or one resolved (by any device). */
  receive(record: ConflictRecord): void {
    const conflict = this.wrap(record)
    if (record.resolved) {
      if (!this.open.delete(record.id)) return
    } else {
      if (this.open.has(record.id)) return
      this.open.set(record.id, conflict)
    }
    this.emit(conflict)
  }

  /** The whole open list from the server: new ones are announced, the ones gone are announced resolved. */
  replace(records: ConflictRecord[]): void {
    const current = new Set(records.map((r) => r.id))
    for (const [id, conflict] of this.open) {
      if (!current.has(id)) this.receive({ ...conflict, resolved: true })
    }
    for (const record of records) this.receive(record)
  }

  private wrap(record: ConflictRecord): Conflict {
    const { resolver } = this
    const conflict: Conflict = {
      ...record,
      async resolve(winningVersion, mergedData) {
        const reply = await resolver({ conflictId: record.id, winningVersion, ...(mergedData ? { mergedData } : {}) })
        if (!reply.ok) throw SyncClientError.from(reply.error)
        return reply as unknown as ConflictResolution
      },
    }
    return conflict
  }
}
