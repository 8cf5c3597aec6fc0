/**
 * The repository contract (document.repository.ts) on PostgreSQL, selected by
 * DATABASE_URL: tables in postgres-schema.ts, a `pg` Pool, parameterized
 * queries only.
 *
 * A `write` (one group commit, any number of documents) is one transaction:
 * the batch is folded into its final rows (later operations on a key win, as
 * in a LevelDB batch), then sent as ONE statement whose data-modifying CTEs
 * write every table (an autocommit statement is its own transaction), one
 * round trip. A batch whose log rows exceed one statement's budget (rows,
 * bytes) is sent as BEGIN, several statements, COMMIT. Either way it resolves
 * only once PostgreSQL has committed (synchronous_commit is left on), and an
 * error rejects with nothing of the batch stored.
 *
 * `openPostgresStore` takes the store's advisory lock on a dedicated
 * connection held for the server's lifetime (one server per store), migrates
 * the schema, then opens the pool. In cluster mode (DATABASE_URL and
 * REDIS_URL) there is no store lock: every write is fenced by the leases of
 * its documents instead (postgres-leases.ts).
 */
import os from 'node:os'
import pg from 'pg'
import type { AppliedChange, DeviceSyncState, DocumentSummary, EntityRecord, SnapshotMeta, StoredConflict } from '../models/records.js'
import { CHANGE_ID_TTL_MS, entityKey, readStoredConflict } from '../models/records.js'
import type { Logger } from '../utils/logger.js'
import { StoreLockedError } from '../utils/errors.js'
import type { DocumentRepository, DocumentStore, DocumentWrite, StoredDocument, StoredLog } from './document.repository.js'
import { migrate } from './postgres-schema.js'
import { FENCE_SQLSTATE, LeaseLostError, PostgresLeases, type ClusterNode, type FenceParams } from './postgres-leases.js'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Log rows (3 parameters each) and bytes one statement carries at most. */
const STATEMENT_ROWS = 5000
const STATEMENT_BYTES = 64 << 20

/** A view of a Buffer from pg as a plain Uint8Array (no copy), as LevelDB gives. */
const bytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
const json = (value: unknown): string => JSON.stringify(value)

interface LogRow {
  docId: string
  seq: number
  data: Uint8Array
}

/** A batch folded into the rows it leaves: per key, its last operation. */
interface FoldedBatch {
  documents: Map<string, { clock: number; summary: string | null }>
  /** Per document: the log sequences to delete ([lo, hi) ranges, none holding a put) and the entries to put. */
  logDeletes: { docId: string; lo: number; hi: number }[]
  logPuts: LogRow[]
  /** Per document and entity key: the record to store, or null to drop it. */
  entities: Map<string, Map<string, EntityRecord | null>>
  conflicts: Map<string, Map<string, StoredConflict>>
  changes: Map<string, Map<string, AppliedChange>>
  devices: Map<string, Map<string, DeviceSyncState>>
}

function entry<V>(map: Map<string, Map<string, V>>, docId: string): Map<string, V> {
  let inner = map.get(docId)
  if (!inner) map.set(docId, (inner = new Map<string, V>()))
  return inner
}

/** Folds the writes, in order, into the rows they leave. */
export function foldBatch(writes: readonly DocumentWrite[]): FoldedBatch {
  const folded: FoldedBatch = {
    documents: new Map(),
    logDeletes: [],
    logPuts: [],
    entities: new Map(),
    conflicts: new Map(),
    changes: new Map(),
    devices: new Map(),
  }
  const logs = new Map<string, { puts: Map<number, Uint8Array>; ranges: [number, number][] }>()
  for (const w of writes) {
    const { docId } = w
    let log = logs.get(docId)
    if (!log) logs.set(docId, (log = { puts: new Map(), ranges: [] }))
    if (w.append) w.append.updates.forEach((update, i) => log.puts.set(w.append!.firstSeq + i, update))
    if (w.compact) {
      const { firstSeq, upToSeq, state } = w.compact
      for (const seq of log.puts.keys()) if (seq >= firstSeq && seq < upToSeq) log.puts.delete(seq)
      if (firstSeq < upToSeq) log.ranges.push([firstSeq, upToSeq])
      log.puts.set(upToSeq, state)
    }
    const previous = folded.documents.get(docId)
    folded.documents.set(docId, { clock: w.clock, summary: w.summary ? json(w.summary) : (previous?.summary ?? null) })
    const entities = entry(folded.entities, docId)
    for (const { record } of w.entities) entities.set(entityKey(record.type, record.id), record)
    for (const r of w.removedEntities ?? []) entities.set(r.entityKey, null)
    for (const c of w.conflicts) entry(folded.conflicts, docId).set(c.id, c)
    for (const c of w.changes) entry(folded.changes, docId).set(c.changeId, c)
    for (const d of w.devices) entry(folded.devices, docId).set(d.deviceId, d)
  }
  for (const [docId, { puts, ranges }] of logs) {
    for (const [seq, data] of puts) folded.logPuts.push({ docId, seq, data })
    // The deletes leave out every sequence put in this batch: the statement's parts never touch one row twice.
    for (const [lo, hi] of ranges) {
      const inside = [...puts.keys()].filter((s) => s >= lo && s < hi).sort((a, b) => a - b)
      let from = lo
      for (const s of [...inside, hi]) {
        if (s > from) folded.logDeletes.push({ docId, lo: from, hi: s })
        from = s + 1
      }
    }
  }
  return folded
}

/** Builds one statement from parts: one part alone, or the parts as data-modifying CTEs. */
class Statement {
  readonly values: unknown[] = []
  private readonly parts: string[] = []

  param(value: unknown): string {
    this.values.push(value)
    return `$${this.values.length}`
  }

  add(part: string): void {
    this.parts.push(part)
  }

  get empty(): boolean {
    return this.parts.length === 0
  }

  get text(): string {
    if (this.parts.length === 1) return this.parts[0] as string
    const ctes = this.parts.slice(0, -1).map((p, i) => `w${i} AS (${p})`)
    return `WITH ${ctes.join(', ')} ${this.parts.at(-1) as string}`
  }
}

function addLogPuts(s: Statement, rows: readonly LogRow[]): void {
  const values = rows.map((r) => `(${s.param(r.docId)}, ${s.param(r.seq)}::int8, ${s.param(r.data)}::bytea)`)
  s.add(`INSERT INTO log_entries (doc_id, seq, data) VALUES ${values.join(', ')} ON CONFLICT (doc_id, seq) DO UPDATE SET data = EXCLUDED.data`)
}

/** Splits the log puts into chunks of at most STATEMENT_ROWS rows and STATEMENT_BYTES bytes (a larger entry alone). */
function chunks(rows: readonly LogRow[]): LogRow[][] {
  const out: LogRow[][] = []
  let current: LogRow[] = []
  let size = 0
  for (const row of rows) {
    if (current.length > 0 && (current.length >= STATEMENT_ROWS || size + row.data.byteLength > STATEMENT_BYTES)) {
      out.push(current)
      current = []
      size = 0
    }
    current.push(row)
    size += row.data.byteLength
  }
  if (current.length > 0) out.push(current)
  return out
}

/**
 * The statements that write a folded batch (the first carries everything but
 * further log chunks). With a `fence` (cluster mode), the first statement's
 * main query is the fencing check: it fails the statement, so the whole batch,
 * unless every document is still leased to this node at its epoch.
 */
export function batchStatements(folded: FoldedBatch, fence?: FenceParams): Statement[] {
  const s = new Statement()
  if (folded.logDeletes.length > 0) {
    const d = folded.logDeletes
    s.add(
      `DELETE FROM log_entries l USING unnest(${s.param(d.map((r) => r.docId))}::text[], ${s.param(d.map((r) => r.lo))}::int8[], ${s.param(d.map((r) => r.hi))}::int8[]) AS r(doc_id, lo, hi) ` +
        'WHERE l.doc_id = r.doc_id AND l.seq >= r.lo AND l.seq < r.hi',
    )
  }
  const [firstChunk, ...moreChunks] = chunks(folded.logPuts)
  if (firstChunk) addLogPuts(s, firstChunk)
  const removed: { docId: string; key: Uint8Array }[] = []
  const stored: { docId: string; key: Uint8Array; record: EntityRecord }[] = []
  for (const [docId, entities] of folded.entities) {
    for (const [key, record] of entities) {
      if (record) stored.push({ docId, key: encoder.encode(key), record })
      else removed.push({ docId, key: encoder.encode(key) })
    }
  }
  if (removed.length > 0) {
    s.add(
      `DELETE FROM entities e USING unnest(${s.param(removed.map((r) => r.docId))}::text[], ${s.param(removed.map((r) => r.key))}::bytea[]) AS r(doc_id, entity_key) ` +
        'WHERE e.doc_id = r.doc_id AND e.entity_key = r.entity_key',
    )
  }
  if (stored.length > 0) {
    s.add(
      `INSERT INTO entities (doc_id, entity_key, ts, record) SELECT * FROM unnest(${s.param(stored.map((r) => r.docId))}::text[], ` +
        `${s.param(stored.map((r) => r.key))}::bytea[], ${s.param(stored.map((r) => r.record.timestamp))}::float8[], ${s.param(stored.map((r) => json(r.record)))}::json[]) ` +
        'ON CONFLICT (doc_id, entity_key) DO UPDATE SET ts = EXCLUDED.ts, record = EXCLUDED.record',
    )
  }
  const rows = <V>(map: Map<string, Map<string, V>>) => [...map].flatMap(([docId, inner]) => [...inner].map(([key, value]) => ({ docId, key, value })))
  const conflicts = rows(folded.conflicts)
  if (conflicts.length > 0) {
    s.add(
      `INSERT INTO conflicts (doc_id, conflict_id, record) SELECT * FROM unnest(${s.param(conflicts.map((r) => r.docId))}::text[], ` +
        `${s.param(conflicts.map((r) => r.key))}::text[], ${s.param(conflicts.map((r) => json(r.value)))}::json[]) ` +
        'ON CONFLICT (doc_id, conflict_id) DO UPDATE SET record = EXCLUDED.record',
    )
  }
  const changes = rows(folded.changes)
  if (changes.length > 0) {
    s.add(
      `INSERT INTO change_ids (doc_id, change_id, applied_at, record) SELECT * FROM unnest(${s.param(changes.map((r) => r.docId))}::text[], ` +
        `${s.param(changes.map((r) => encoder.encode(r.key)))}::bytea[], ${s.param(changes.map((r) => r.value.appliedAt))}::float8[], ` +
        `${s.param(changes.map((r) => json(r.value)))}::json[]) ON CONFLICT (doc_id, change_id) DO UPDATE SET applied_at = EXCLUDED.applied_at, record = EXCLUDED.record`,
    )
  }
  const devices = rows(folded.devices)
  if (devices.length > 0) {
    s.add(
      `INSERT INTO devices (doc_id, device_id, record) SELECT * FROM unnest(${s.param(devices.map((r) => r.docId))}::text[], ` +
        `${s.param(devices.map((r) => r.key))}::text[], ${s.param(devices.map((r) => json(r.value)))}::json[]) ` +
        'ON CONFLICT (doc_id, device_id) DO UPDATE SET record = EXCLUDED.record',
    )
  }
  const documents = [...folded.documents]
  if (documents.length > 0) {
    s.add(
      `INSERT INTO documents (doc_id, clock, summary) SELECT * FROM unnest(${s.param(documents.map(([id]) => id))}::text[], ` +
        `${s.param(documents.map(([, d]) => d.clock))}::float8[], ${s.param(documents.map(([, d]) => d.summary))}::json[]) ` +
        'ON CONFLICT (doc_id) DO UPDATE SET clock = EXCLUDED.clock, summary = COALESCE(EXCLUDED.summary, documents.summary)',
    )
  }
  if (fence && !s.empty) s.add(`SELECT lease_fence(${s.param(fence.docIds)}::text[], ${s.param(fence.epochs)}::int8[], ${s.param(fence.nodeId)}::text)`)
  const statements = s.empty ? [] : [s]
  for (const chunk of moreChunks) {
    const more = new Statement()
    addLogPuts(more, chunk)
    statements.push(more)
  }
  return statements
}

export class PostgresDocumentRepository implements DocumentRepository {
  /** `readLogUpTo` reads in flight: a write waits for them, so they read the state they were called on. */
  private readonly logReads = new Set<Promise<void>>()

  /** `leases`: cluster mode, where every write is fenced by the leases of its documents (postgres-leases.ts). */
  constructor(
    private readonly pool: pg.Pool,
    private readonly leases?: PostgresLeases,
  ) {}

  async read(docId: string, now = Date.now()): Promise<StoredDocument> {
    const [log, meta, entities, conflicts, changes] = await Promise.all([
      this.readLog(docId),
      this.pool.query<{ clock: number }>('SELECT clock FROM documents WHERE doc_id = $1', [docId]),
      this.pool.query<{ record: EntityRecord }>('SELECT record FROM entities WHERE doc_id = $1 ORDER BY entity_key', [docId]),
      this.pool.query<{ record: StoredConflict }>('SELECT record FROM conflicts WHERE doc_id = $1 ORDER BY conflict_id', [docId]),
      this.pool.query<{ record: AppliedChange }>('SELECT record FROM change_ids WHERE doc_id = $1 AND applied_at > $2 ORDER BY change_id', [
        docId,
        now - CHANGE_ID_TTL_MS,
      ]),
    ])
    return {
      log,
      clock: meta.rows[0]?.clock ?? 0,
      entities: entities.rows.map((r) => r.record),
      conflicts: conflicts.rows.map((r) => r.record).filter((c) => !c.resolved).map(readStoredConflict),
      changes: changes.rows.map((r) => r.record),
    }
  }

  async readDevice(docId: string, deviceId: string): Promise<DeviceSyncState | undefined> {
    const { rows } = await this.pool.query<{ record: DeviceSyncState }>('SELECT record FROM devices WHERE doc_id = $1 AND device_id = $2', [docId, deviceId])
    return rows[0]?.record
  }

  async entitiesAfter(docId: string, afterTs: number, limit: number): Promise<{ ts: number; entityKey: string }[]> {
    const { rows } = await this.pool.query<{ ts: number; entity_key: Buffer }>(
      'SELECT ts, entity_key FROM entities WHERE doc_id = $1 AND ts > $2 ORDER BY ts, entity_key LIMIT $3',
      [docId, afterTs, limit],
    )
    return rows.map((r) => ({ ts: r.ts, entityKey: decoder.decode(r.entity_key) }))
  }

  async write(writes: readonly DocumentWrite[]): Promise<void> {
    if (this.logReads.size > 0) await Promise.all(this.logReads)
    const fence = this.leases?.fence([...new Set(writes.map((w) => w.docId))])
    const statements = batchStatements(foldBatch(writes), fence)
    if (statements.length === 0) return
    if (statements.length === 1) {
      const [only] = statements as [Statement]
      return this.fenced(this.pool.query(only.text, only.values))
    }
    return this.fenced(
      this.transaction(async (client) => {
        for (const s of statements) await client.query(s.text, s.values)
      }),
    )
  }

  /** A fenced statement's failure as a LeaseLostError (and an immediate renewal, which finds the lost leases). */
  private async fenced(query: Promise<unknown>): Promise<void> {
    try {
      await query
    } catch (err) {
      if ((err as { code?: unknown }).code !== FENCE_SQLSTATE) throw err
      this.leases?.fenceFailed()
      throw new LeaseLostError('the write was fenced off: another node holds the lease of one of its documents now', { cause: err })
    }
  }

  async pruneChangeIds(docId: string, now = Date.now()): Promise<number> {
    const result = await this.pool.query('DELETE FROM change_ids WHERE doc_id = $1 AND applied_at <= $2', [docId, now - CHANGE_ID_TTL_MS])
    return result.rowCount ?? 0
  }

  async readSummary(docId: string): Promise<DocumentSummary | undefined> {
    const { rows } = await this.pool.query<{ summary: DocumentSummary | null }>('SELECT summary FROM documents WHERE doc_id = $1', [docId])
    return rows[0]?.summary ?? undefined
  }

  async documentIds(afterDocId: string | undefined, limit: number): Promise<string[]> {
    // The documents of `documents`, `snapshots` and `revoked_devices` (see postgres-schema.ts), each an index range scan.
    const after = afterDocId === undefined ? 'TRUE' : 'doc_id > $2'
    const { rows } = await this.pool.query<{ doc_id: string }>(
      `SELECT doc_id FROM (
         (SELECT doc_id FROM documents WHERE ${after} ORDER BY doc_id LIMIT $1)
         UNION (SELECT DISTINCT doc_id FROM snapshots WHERE ${after} ORDER BY doc_id LIMIT $1)
         UNION (SELECT DISTINCT doc_id FROM revoked_devices WHERE ${after} ORDER BY doc_id LIMIT $1)
       ) AS d ORDER BY doc_id LIMIT $1`,
      afterDocId === undefined ? [limit] : [limit, afterDocId],
    )
    return rows.map((r) => r.doc_id)
  }

  async exists(docId: string): Promise<boolean> {
    const { rows } = await this.pool.query<{ found: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM documents WHERE doc_id = $1) OR EXISTS (SELECT 1 FROM snapshots WHERE doc_id = $1)
         OR EXISTS (SELECT 1 FROM revoked_devices WHERE doc_id = $1) AS found`,
      [docId],
    )
    return rows[0]?.found === true
  }

  async erase(docId: string): Promise<void> {
    // One statement, one transaction. In cluster mode the fence is its main query: a node that lost the
    // user's lease erases nothing (the deletes are CTEs of the statement that fails).
    const tables = ['log_entries', 'entities', 'conflicts', 'change_ids', 'devices', 'snapshots', 'revoked_devices', 'documents']
    const deletes = tables.map((t) => `${t} AS (DELETE FROM ${t} WHERE doc_id = $1)`).join(', ')
    const fence = this.leases?.fence([docId])
    await this.fenced(
      fence
        ? this.pool.query(`WITH ${deletes} SELECT lease_fence($2::text[], $3::int8[], $4::text)`, [docId, fence.docIds, fence.epochs, fence.nodeId])
        : this.pool.query(`WITH ${deletes} SELECT 1`, [docId]),
    )
  }

  async listDevices(docId: string): Promise<DeviceSyncState[]> {
    const { rows } = await this.pool.query<{ record: DeviceSyncState }>('SELECT record FROM devices WHERE doc_id = $1 ORDER BY device_id', [docId])
    return rows.map((r) => r.record)
  }

  async snapshots(docId: string): Promise<SnapshotMeta[]> {
    const { rows } = await this.pool.query<{ meta: SnapshotMeta }>('SELECT meta FROM snapshots WHERE doc_id = $1 ORDER BY snapshot_id', [docId])
    return rows.map((r) => r.meta)
  }

  async snapshot(docId: string, id: string): Promise<SnapshotMeta | undefined> {
    const { rows } = await this.pool.query<{ meta: SnapshotMeta }>('SELECT meta FROM snapshots WHERE doc_id = $1 AND snapshot_id = $2', [docId, id])
    return rows[0]?.meta
  }

  async snapshotState(docId: string, id: string): Promise<Uint8Array | undefined> {
    const { rows } = await this.pool.query<{ state: Buffer }>('SELECT state FROM snapshots WHERE doc_id = $1 AND snapshot_id = $2', [docId, id])
    return rows[0] ? bytes(rows[0].state) : undefined
  }

  readLogUpTo(docId: string, upToSeq: number): Promise<Uint8Array[]> {
    const read = this.pool
      .query<{ data: Buffer }>('SELECT data FROM log_entries WHERE doc_id = $1 AND seq <= $2 ORDER BY seq', [docId, upToSeq])
      .then(({ rows }) => rows.map((r) => bytes(r.data)))
    const settled = read.then(
      () => undefined,
      () => undefined,
    )
    this.logReads.add(settled)
    void settled.then(() => this.logReads.delete(settled))
    return read
  }

  async putSnapshot(docId: string, meta: SnapshotMeta, state: Uint8Array): Promise<void> {
    await this.pool.query(
      'INSERT INTO snapshots (doc_id, snapshot_id, meta, state) VALUES ($1, $2, $3, $4) ON CONFLICT (doc_id, snapshot_id) DO UPDATE SET meta = EXCLUDED.meta, state = EXCLUDED.state',
      [docId, meta.id, json(meta), state],
    )
  }

  async deleteSnapshots(docId: string, ids: readonly string[]): Promise<void> {
    if (ids.length === 0) return
    await this.pool.query('DELETE FROM snapshots WHERE doc_id = $1 AND snapshot_id = ANY($2::text[])', [docId, ids])
  }

  async revokedDevices(docId: string): Promise<Map<string, number>> {
    const { rows } = await this.pool.query<{ device_id: string; revoked_at: number }>(
      'SELECT device_id, revoked_at FROM revoked_devices WHERE doc_id = $1 ORDER BY device_id',
      [docId],
    )
    return new Map(rows.map((r) => [r.device_id, r.revoked_at]))
  }

  async isRevoked(docId: string, deviceId: string): Promise<boolean> {
    const { rowCount } = await this.pool.query('SELECT 1 FROM revoked_devices WHERE doc_id = $1 AND device_id = $2', [docId, deviceId])
    return (rowCount ?? 0) > 0
  }

  async setRevoked(docId: string, deviceId: string, revokedAt: number | undefined): Promise<void> {
    if (revokedAt === undefined) await this.pool.query('DELETE FROM revoked_devices WHERE doc_id = $1 AND device_id = $2', [docId, deviceId])
    else {
      await this.pool.query(
        'INSERT INTO revoked_devices (doc_id, device_id, revoked_at) VALUES ($1, $2, $3) ON CONFLICT (doc_id, device_id) DO UPDATE SET revoked_at = EXCLUDED.revoked_at',
        [docId, deviceId, revokedAt],
      )
    }
  }

  private async readLog(docId: string): Promise<StoredLog> {
    const { rows } = await this.pool.query<{ seq: string; data: Buffer }>('SELECT seq, data FROM log_entries WHERE doc_id = $1 ORDER BY seq', [docId])
    const updates = rows.map((r) => bytes(r.data))
    const firstSeq = rows.length > 0 ? Number(rows[0]!.seq) : 0
    const nextSeq = rows.length > 0 ? Number(rows.at(-1)!.seq) + 1 : 0
    return { updates, firstSeq, nextSeq, bytes: updates.reduce((n, u) => n + u.byteLength, 0) }
  }

  /** Runs `work` in a transaction on one connection: COMMIT when it resolves, ROLLBACK (and a rejection) when it throws. */
  private async transaction(work: (client: pg.PoolClient) => Promise<void>): Promise<void> {
    const client = await this.pool.connect()
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      try {
        await work(client)
        await client.query('COMMIT')
      } catch (err) {
        await client.query('ROLLBACK').catch((e: unknown) => (broken = e instanceof Error ? e : new Error(String(e))))
        throw err
      }
    } finally {
      client.release(broken)
    }
  }
}

/** The connection settings of `url`; a URL without a user name gets the OS user's, as libpq does. */
export function connectionConfig(url: string): pg.ClientConfig {
  const parsed = new URL(url)
  if (!parsed.username) parsed.username = encodeURIComponent(process.env.PGUSER || process.env.USER || os.userInfo().username)
  return { connectionString: parsed.toString(), application_name: 'superclip-sync' }
}

/** `url` without its password, for messages and logs. */
export function describeUrl(url: string): string {
  try {
    const parsed = new URL(url)
    parsed.password = ''
    parsed.search = ''
    return parsed.toString()
  } catch {
    return 'DATABASE_URL'
  }
}

/** Advisory lock keys of a store: a fixed class key, and the store's schema. */
const LOCK_CLASS = 0x5c_17_5e_c5 // "SuperClip Sync"
const LOCK = `${LOCK_CLASS}::int4, hashtext(current_schema())`

export interface PostgresStore extends DocumentStore {
  readonly repo: PostgresDocumentRepository
  readonly pool: pg.Pool
  /** The schema the store's tables are in (the connection's current schema). */
  readonly schema: string
  /** The migrations this start applied (none on an up-to-date schema). */
  readonly migrated: number[]
  /** Cluster mode's leases (postgres-leases.ts); undefined outside it. */
  readonly leases: PostgresLeases | undefined
}

/**
 * Opens the PostgreSQL store of `url` (its tables in the connection's current
 * schema). Alone (no `cluster`): takes the store's advisory lock on a
 * dedicated connection held until `close` (a `StoreLockedError` if another
 * server holds it). In a cluster (`cluster`: this node): no store lock, every
 * node shares the store, and each user's document is owned through a lease
 * (postgres-leases.ts) that fences its writes. Then migrates the schema
 * (serialized between nodes) and opens the pool. `close` ends the pool, then
 * the lock's connection.
 */
export async function openPostgresStore(
  url: string,
  log?: Logger,
  options: { poolSize?: number; cluster?: ClusterNode | undefined } = {},
): Promise<PostgresStore> {
  const config = connectionConfig(url)
  const lock = new pg.Client(config)
  await lock.connect()
  let pool: pg.Pool | undefined
  let lockHeld = false
  try {
    const { rows } = await lock.query<{ schema: string | null }>('SELECT current_schema() AS schema')
    const schema = rows[0]?.schema
    if (!schema) throw new Error(`DATABASE_URL ${describeUrl(url)}: no schema of the search_path exists`)
    if (!options.cluster) {
      const locked = await lock.query<{ locked: boolean }>(`SELECT pg_try_advisory_lock(${LOCK}) AS locked`)
      if (locked.rows[0]?.locked !== true) {
        throw new StoreLockedError(
          `the PostgreSQL store ${describeUrl(url)} (schema ${schema}) is in use by another process (advisory lock held). ` +
            'Stop the other server or start this one on another database or schema (or run every server as a cluster: REDIS_URL).',
        )
      }
      lockHeld = true
      // Losing this connection loses the lock: say so loudly (cluster mode fences writes with leases instead).
      lock.on('error', (err) => log?.error({ err }, 'the PostgreSQL store lock connection failed; the store lock is lost'))
    }
    const migrated = await migrate(lock)
    if (migrated.length > 0) log?.info({ schema, migrated }, 'PostgreSQL schema migrated')
    if (!lockHeld) await lock.end()
    pool = new pg.Pool({ ...config, max: options.poolSize ?? 10 })
    pool.on('error', (err) => log?.warn({ err }, 'an idle PostgreSQL connection failed'))
    const opened = pool
    const leases = options.cluster ? new PostgresLeases(opened, options.cluster, log) : undefined
    leases?.start()
    return {
      kind: 'postgresql',
      repo: new PostgresDocumentRepository(opened, leases),
      pool: opened,
      schema,
      migrated,
      leases,
      async ping() {
        let timer: NodeJS.Timeout | undefined
        const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('PostgreSQL did not answer within 2 s')), 2000)))
        try {
          await Promise.race([opened.query('SELECT 1'), timeout])
        } finally {
          clearTimeout(timer)
        }
      },
      async close() {
        await leases?.releaseAll()
        await opened.end()
        if (lockHeld) await lock.end()
      },
    }
  } catch (err) {
    await pool?.end().catch(() => undefined)
    await lock.end().catch(() => undefined)
    throw err
  }
}
