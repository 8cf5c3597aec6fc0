/**
 * The repository contract (document.repository.ts) on LevelDB, the embedded
 * default store: every LevelDB access for user documents (key layout in
 * keys.ts). One `write` is one LevelDB batch (fsynced with SYNC_WRITES).
 * Errors propagate: a failed write is never reported as stored.
 */
import type { AppliedChange, DeviceSyncState, DocumentSummary, EntityRecord, SnapshotMeta, StoredConflict } from '../models/records.js'
import { CHANGE_ID_TTL_MS, entityKey, readStoredConflict } from '../models/records.js'
import {
  Section,
  byTimeAfter,
  byTimeKey,
  changeIdKey,
  conflictKey,
  deviceKey,
  docIdOfKey,
  documentRange,
  documentsAfter,
  entityKeyBytes,
  metaKey,
  parseByTimeKey,
  revokedKey,
  sectionRange,
  seqOfUpdateKey,
  snapshotKey,
  snapshotStateKey,
  updateKey,
} from './keys.js'
import type { DocumentRepository, DocumentStore, DocumentWrite, StoredDocument, StoredLog } from './document.repository.js'
import { openStore, type Store } from './level-store.js'

const CLOCK = 'clock'
const SUMMARY = 'summary'
const encoder = new TextEncoder()
const decoder = new TextDecoder()
const toJson = (value: unknown): Uint8Array => encoder.encode(JSON.stringify(value))
const fromJson = <T>(bytes: Uint8Array): T => JSON.parse(decoder.decode(bytes)) as T
const EMPTY = new Uint8Array(0)

export class LevelDocumentRepository implements DocumentRepository {
  constructor(
    private readonly db: Store,
    private readonly options: { syncWrites: boolean },
  ) {}

  async read(docId: string, now = Date.now()): Promise<StoredDocument> {
    const [log, clockBytes, entities, conflicts, changes] = await Promise.all([
      this.readLog(docId),
      this.db.get(metaKey(docId, CLOCK)),
      this.values<EntityRecord>(docId, Section.ENTITY),
      this.values<StoredConflict>(docId, Section.CONFLICT),
      this.values<AppliedChange>(docId, Section.CHANGE_ID),
    ])
    const clock = clockBytes ? new DataView(clockBytes.buffer, clockBytes.byteOffset, 8).getFloat64(0) : 0
    return {
      log,
      clock,
      entities,
      conflicts: conflicts.filter((c) => !c.resolved).map(readStoredConflict),
      changes: changes.filter((c) => now - c.appliedAt < CHANGE_ID_TTL_MS),
    }
  }

  async readDevice(docId: string, deviceId: string): Promise<DeviceSyncState | undefined> {
    const bytes = await this.db.get(deviceKey(docId, deviceId))
    return bytes ? fromJson<DeviceSyncState>(bytes) : undefined
  }

  /** Entity keys in server-timestamp order, strictly after `afterTs`, at most `limit`. */
  async entitiesAfter(docId: string, afterTs: number, limit: number): Promise<{ ts: number; entityKey: string }[]> {
    const { lt } = sectionRange(docId, Section.BY_TIME)
    const found: { ts: number; entityKey: string }[] = []
    for (const key of await this.db.keys({ gte: byTimeAfter(docId, afterTs), lt, limit }).all()) {
      found.push(parseByTimeKey(docId, key))
    }
    return found
  }

  /** Writes the given documents' changes in one atomic batch. */
  async write(writes: readonly DocumentWrite[]): Promise<void> {
    const batch = this.db.batch()
    for (const w of writes) {
      const { docId } = w
      if (w.append) {
        const { firstSeq, updates } = w.append
        updates.forEach((update, i) => batch.put(updateKey(docId, firstSeq + i), update))
      }
      if (w.compact) {
        const { firstSeq, upToSeq, state } = w.compact
        for (let seq = firstSeq; seq < upToSeq; seq++) batch.del(updateKey(docId, seq))
        batch.put(updateKey(docId, upToSeq), state)
      }
      batch.put(metaKey(docId, CLOCK), encodeClock(w.clock))
      for (const { record, previousTimestamp } of w.entities) {
        const key = entityKey(record.type, record.id)
        if (previousTimestamp !== undefined) batch.del(byTimeKey(docId, previousTimestamp, key))
        batch.put(byTimeKey(docId, record.timestamp, key), EMPTY)
        batch.put(entityKeyBytes(docId, key), toJson(record))
      }
      for (const c of w.conflicts) batch.put(conflictKey(docId, c.id), toJson(c))
      for (const c of w.changes) batch.put(changeIdKey(docId, c.changeId), toJson(c))
      for (const d of w.devices) batch.put(deviceKey(docId, d.deviceId), toJson(d))
      if (w.summary) batch.put(metaKey(docId, SUMMARY), toJson(w.summary))
      for (const r of w.removedEntities ?? []) {
        batch.del(entityKeyBytes(docId, r.entityKey))
        batch.del(byTimeKey(docId, r.timestamp, r.entityKey))
      }
    }
    await batch.write({ sync: this.options.syncWrites })
  }

  /** Drops applied change ids older than the TTL. */
  async pruneChangeIds(docId: string, now = Date.now()): Promise<number> {
    const expired: Uint8Array[] = []
    for (const [key, value] of await this.db.iterator(sectionRange(docId, Section.CHANGE_ID)).all()) {
      if (now - fromJson<AppliedChange>(value).appliedAt >= CHANGE_ID_TTL_MS) expired.push(key)
    }
    if (expired.length > 0) await this.db.batch(expired.map((key) => ({ type: 'del' as const, key })))
    return expired.length
  }

  /** The summary stored with the document's last commit, if it has one (documents written since it exists). */
  async readSummary(docId: string): Promise<DocumentSummary | undefined> {
    const bytes = await this.db.get(metaKey(docId, SUMMARY))
    return bytes ? fromJson<DocumentSummary>(bytes) : undefined
  }

  /** Up to `limit` document ids after `afterDocId` (from the first), in the store's order. */
  async documentIds(afterDocId: string | undefined, limit: number): Promise<string[]> {
    const ids: string[] = []
    let range = documentsAfter(afterDocId)
    while (ids.length < limit) {
      const [key] = await this.db.keys({ ...range, limit: 1 }).all()
      const docId = key ? docIdOfKey(key) : undefined
      if (docId === undefined) break
      ids.push(docId)
      range = documentsAfter(docId)
    }
    return ids
  }

  /** Whether the store holds any key of the document. */
  async exists(docId: string): Promise<boolean> {
    return (await this.db.keys({ ...documentRange(docId), limit: 1 }).all()).length > 0
  }

  /** Removes every key of the document: log, index, conflicts, change ids, devices, snapshots, revocations. */
  async erase(docId: string): Promise<void> {
    await this.db.clear(documentRange(docId))
  }

  async listDevices(docId: string): Promise<DeviceSyncState[]> {
    return this.values<DeviceSyncState>(docId, Section.DEVICE)
  }

  async snapshots(docId: string): Promise<SnapshotMeta[]> {
    return this.values<SnapshotMeta>(docId, Section.SNAPSHOT)
  }

  async snapshot(docId: string, id: string): Promise<SnapshotMeta | undefined> {
    const bytes = await this.db.get(snapshotKey(docId, id))
    return bytes ? fromJson<SnapshotMeta>(bytes) : undefined
  }

  async snapshotState(docId: string, id: string): Promise<Uint8Array | undefined> {
    return this.db.get(snapshotStateKey(docId, id))
  }

  /**
   * The log's entries up to `upToSeq`. The iterator (and its LevelDB
   * snapshot) is made before this returns: called in the turn a batch was
   * written, it reads that batch's state whatever is written later.
   */
  readLogUpTo(docId: string, upToSeq: number): Promise<Uint8Array[]> {
    return this.db.values({ gte: updateKey(docId, 0), lte: updateKey(docId, upToSeq) }).all()
  }

  /** Stores a snapshot's metadata and state. */
  async putSnapshot(docId: string, meta: SnapshotMeta, state: Uint8Array): Promise<void> {
    await this.db.batch(
      [
        { type: 'put', key: snapshotKey(docId, meta.id), value: toJson(meta) },
        { type: 'put', key: snapshotStateKey(docId, meta.id), value: state },
      ],
      { sync: this.options.syncWrites },
    )
  }

  async deleteSnapshots(docId: string, ids: readonly string[]): Promise<void> {
    const ops = ids.flatMap((id) => [
      { type: 'del' as const, key: snapshotKey(docId, id) },
      { type: 'del' as const, key: snapshotStateKey(docId, id) },
    ])
    if (ops.length > 0) await this.db.batch(ops, { sync: this.options.syncWrites })
  }

  /** Devices revoked for the document's user, with when. */
  async revokedDevices(docId: string): Promise<Map<string, number>> {
    const revoked = new Map<string, number>()
    const at = sectionRange(docId, Section.REVOKED).gte.length
    for (const [key, value] of await this.db.iterator(sectionRange(docId, Section.REVOKED)).all()) {
      revoked.set(decoder.decode(key.subarray(at)), fromJson<{ revokedAt: number }>(value).revokedAt)
    }
    return revoked
  }

  async isRevoked(docId: string, deviceId: string): Promise<boolean> {
    return (await this.db.get(revokedKey(docId, deviceId))) !== undefined
  }

  async setRevoked(docId: string, deviceId: string, revokedAt: number | undefined): Promise<void> {
    const key = revokedKey(docId, deviceId)
    if (revokedAt === undefined) await this.db.del(key, { sync: this.options.syncWrites })
    else await this.db.put(key, toJson({ revokedAt }), { sync: this.options.syncWrites })
  }

  private async readLog(docId: string): Promise<StoredLog> {
    const updates: Uint8Array[] = []
    let firstSeq = -1
    let lastSeq = -1
    let bytes = 0
    // all(): entries come in batches; `for await` costs a promise per entry (20,000-entity loads, bench:peers).
    for (const [key, value] of await this.db.iterator(sectionRange(docId, Section.UPDATE)).all()) {
      const seq = seqOfUpdateKey(key)
      if (firstSeq < 0) firstSeq = seq
      lastSeq = seq
      updates.push(value)
      bytes += value.byteLength
    }
    return { updates, firstSeq: firstSeq < 0 ? 0 : firstSeq, nextSeq: lastSeq + 1, bytes }
  }

  private async values<T>(docId: string, section: (typeof Section)[keyof typeof Section]): Promise<T[]> {
    const out: T[] = []
    for (const value of await this.db.values(sectionRange(docId, section)).all()) out.push(fromJson<T>(value))
    return out
  }
}

function encodeClock(ms: number): Uint8Array {
  const bytes = new Uint8Array(8)
  new DataView(bytes.buffer).setFloat64(0, ms)
  return bytes
}

/** Opens the LevelDB store under `dataDir` (refused with `StoreLockedError` while another process holds it). */
export async function openLevelStore(dataDir: string, options: { syncWrites: boolean }): Promise<DocumentStore & { db: Store }> {
  const db = await openStore(dataDir)
  return {
    kind: 'leveldb',
    db,
    repo: new LevelDocumentRepository(db, options),
    ping: () => (db.status === 'open' ? Promise.resolve() : Promise.reject(new Error(`LevelDB is ${db.status}`))),
    close: () => db.close(),
  }
}
