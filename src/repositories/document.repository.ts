/**
 * The repository contract: every access to the stored user documents goes
 * through a `DocumentRepository`. Two implementations hold the same data with
 * the same semantics: `LevelDocumentRepository` (LevelDB under DATA_DIR, the
 * embedded default; key layout in keys.ts) and `PostgresDocumentRepository`
 * (PostgreSQL, selected by DATABASE_URL; schema in postgres-schema.ts).
 * `test/document.repository.test.ts` runs one suite against both.
 *
 * Each document (one per user) is an append-only log of Yjs updates plus,
 * beside it, the entity index (by key and by server timestamp), conflicts,
 * applied change ids, device sync states, its clock and summary, snapshots
 * and revoked devices. One `write` call is one atomic batch covering any
 * number of documents (a group commit): it resolves only once the whole batch
 * is durable, and a failed write rejects and stores nothing of the batch (it
 * is never reported as stored). A log compaction is part of such a batch,
 * replacing every entry up to its sequence by the merged state, so nothing
 * appended later is touched. Within one batch, later operations on the same
 * key win (as in a LevelDB batch).
 */
import type { AppliedChange, DeviceSyncState, DocumentSummary, EntityRecord, SnapshotMeta, StoredConflict } from '../models/records.js'

export interface StoredLog {
  /** The log's entries, oldest first. */
  updates: Uint8Array[]
  /** Sequence of the first entry (equals `nextSeq` when the log is empty). */
  firstSeq: number
  nextSeq: number
  bytes: number
}

export interface StoredDocument {
  log: StoredLog
  /** The persisted commit clock, 0 for a new document. */
  clock: number
  entities: EntityRecord[]
  /** Unresolved conflicts. */
  conflicts: StoredConflict[]
  /** Change ids applied within the last CHANGE_ID_TTL_MS. */
  changes: AppliedChange[]
}

/** Everything one commit batch writes for one document. */
export interface DocumentWrite {
  docId: string
  /** New log entries at `firstSeq`, `firstSeq + 1`, ... */
  append?: { firstSeq: number; updates: readonly Uint8Array[] }
  /** Replaces the entries `firstSeq..upToSeq` by `state` stored at `upToSeq`. */
  compact?: { firstSeq: number; upToSeq: number; state: Uint8Array }
  clock: number
  /** Index entries to store, with the timestamp each one had before (its by-time key to drop). */
  entities: readonly { record: EntityRecord; previousTimestamp: number | undefined }[]
  conflicts: readonly StoredConflict[]
  changes: readonly AppliedChange[]
  devices: readonly DeviceSyncState[]
  /** The document's summary for the operators' user list (a write without one keeps the stored one). */
  summary?: DocumentSummary
  /** Index entries to drop (purged entities): the entity key and its by-time key's timestamp. */
  removedEntities?: readonly { entityKey: string; timestamp: number }[]
}

export interface DocumentRepository {
  /** The document as stored (an empty one for an unknown id); change ids past their TTL at `now` are left out. */
  read(docId: string, now?: number): Promise<StoredDocument>

  readDevice(docId: string, deviceId: string): Promise<DeviceSyncState | undefined>

  /** Entity keys in server-timestamp order (then entity key), strictly after `afterTs`, at most `limit`. */
  entitiesAfter(docId: string, afterTs: number, limit: number): Promise<{ ts: number; entityKey: string }[]>

  /** Writes the given documents' changes in one atomic, durable batch (see above). */
  write(writes: readonly DocumentWrite[]): Promise<void>

  /** Drops applied change ids older than the TTL at `now`; returns how many. */
  pruneChangeIds(docId: string, now?: number): Promise<number>

  /** The summary stored with the document's last commit, if it has one (documents written since it exists). */
  readSummary(docId: string): Promise<DocumentSummary | undefined>

  /**
   * Up to `limit` document ids after `afterDocId` (from the first), in the
   * store's order: a stable order for paging (each store has its own). Every
   * document the store holds anything of is listed, once.
   */
  documentIds(afterDocId: string | undefined, limit: number): Promise<string[]>

  /** Whether the store holds anything of the document (log, index, snapshots, revocations...). */
  exists(docId: string): Promise<boolean>

  /** Removes everything of the document: log, index, conflicts, change ids, devices, summary, snapshots, revocations. */
  erase(docId: string): Promise<void>

  /** The devices' last completed syncs, by device id. */
  listDevices(docId: string): Promise<DeviceSyncState[]>

  /** The document's snapshots' metadata (not their states), by snapshot id. */
  snapshots(docId: string): Promise<SnapshotMeta[]>

  snapshot(docId: string, id: string): Promise<SnapshotMeta | undefined>

  snapshotState(docId: string, id: string): Promise<Uint8Array | undefined>

  /**
   * The log's entries up to `upToSeq`. Called in the turn a batch was
   * written, it reads that batch's state whatever is written later (a
   * compaction in the next batch does not change what it returns).
   */
  readLogUpTo(docId: string, upToSeq: number): Promise<Uint8Array[]>

  /** Stores a snapshot's metadata and state (atomically; durable once resolved). */
  putSnapshot(docId: string, meta: SnapshotMeta, state: Uint8Array): Promise<void>

  deleteSnapshots(docId: string, ids: readonly string[]): Promise<void>

  /** Devices revoked for the document's user, with when. */
  revokedDevices(docId: string): Promise<Map<string, number>>

  isRevoked(docId: string, deviceId: string): Promise<boolean>

  /** Marks the device revoked at `revokedAt`, or no longer revoked (undefined). */
  setRevoked(docId: string, deviceId: string, revokedAt: number | undefined): Promise<void>
}

/** An open store: its repository, and how to close it (after the services are closed). */
export interface DocumentStore {
  readonly kind: 'leveldb' | 'postgresql'
  readonly repo: DocumentRepository
  /** Cluster mode only: the leases through which this node owns users' documents (postgres-leases.ts). */
  readonly leases?: DocumentLeases | undefined
  /** Rejects when the store cannot be reached now (GET /health). */
  ping(): Promise<void>
  close(): Promise<void>
}

/**
 * Ownership of documents in a cluster: a document is loaded only once its
 * lease is taken (`take` rejects, with a `LeaseHeldError`, a lease another live
 * node holds) and released when it is unloaded; a lease found lost is
 * reported through `onLost` (the document must then be dropped).
 */
export interface DocumentLeases {
  /** Leases held now: the users this node owns. */
  readonly owned: number
  /** Leases renewed, and leases lost, since start (`/metrics`). */
  readonly renewals: number
  readonly losses: number
  take(docId: string): Promise<void>
  release(docId: string): Promise<void>
  onLost(listener: (docId: string) => void): void
}
