/**
 * The offline commands of `npm run admin`, on a stopped server's DATA_DIR:
 * the server's own services (`createServices` over `openDocumentStore`,
 * configured from the environment as the server would be: LevelDB, or
 * PostgreSQL with DATABASE_URL), one user at a time. The store's lock refuses
 * them while a server holds it (`StoreLockedError`).
 *
 * Reads (export, verify) load each document with
 * `OperatorService.storedDocument`: as stored, nothing repaired or written.
 * Writes (import, compact) go through the operator service like the HTTP
 * routes, so a document loaded for them gets what a server's load does
 * (index rebuild, due compaction, trash purge).
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'
import * as Y from 'yjs'
import { parseEnv } from '../config.js'
import { DELETED, ENTITY_SPECS } from '../models/entity-schema.js'
import { entityKey, type SnapshotMeta } from '../models/records.js'
import { openDocumentStore } from '../repositories/open-store.js'
import { entitiesOf, entityMap } from '../services/entity-index.js'
import { createServices, type Services } from '../services/index.js'
import type { RestoreResult, UserSummary } from '../types/operators.js'
import type { SyncDocument } from '../services/sync-document.js'
import type { Logger } from '../utils/logger.js'
import type { Progress } from './format.js'

export const MANIFEST = 'manifest.json'
/** Users per page when walking them all. */
const PAGE = 1000

export interface Offline {
  /** The data directory, resolved. */
  dataDir: string
  services: Services
  /** Finishes pending writes, unloads the documents, closes the store. */
  close(): Promise<void>
}

/** Warnings and errors of the services, on stderr (stdout is the command's output). */
const stderrLog: Logger = {
  error: (obj, msg) => console.error(`error: ${msg ?? ''} ${describe(obj)}`),
  warn: (obj, msg) => console.error(`warning: ${msg ?? ''} ${describe(obj)}`),
  info: () => {},
  debug: () => {},
}

function describe(obj: object): string {
  return JSON.stringify(obj, (_key, value: unknown) => (value instanceof Error ? value.message : value))
}

/**
 * Opens `dataDir`'s store (refused with `StoreLockedError` while a server
 * runs on it) and the services over it. `create`: a new store is fine (an
 * import into an empty directory); otherwise the store must exist.
 */
export async function openOffline(dataDir: string, { create }: { create: boolean }, env: NodeJS.ProcessEnv = process.env): Promise<Offline> {
  // The server's configuration from the same environment (compaction thresholds, trash retention, fsync).
  const config = parseEnv({ ...env, DATA_DIR: dataDir })
  if (!create && !config.databaseUrl && !existsSync(path.join(config.dataDir, 'db'))) {
    throw new Error(`no store in ${config.dataDir} (${path.join(config.dataDir, 'db')} does not exist); pass --data-dir or set DATA_DIR`)
  }
  const store = await openDocumentStore(config, stderrLog)
  // One user at a time: each document is unloaded once done with (docIdleMs 0); no scheduled snapshots.
  // In a cluster (REDIS_URL) there is no store lock: the command takes each user's lease as a node would
  // (refused while a node serves the user), so its writes are fenced like theirs.
  const services = createServices(store.repo, { ...config, docIdleMs: 0, snapshotEveryMs: 0 }, stderrLog, undefined, store.leases)
  return {
    dataDir: config.dataDir,
    services,
    async close() {
      await services.close()
      await store.close()
    },
  }
}

/** Every user's summary, in the store's order. */
export async function allUsers(offline: Offline): Promise<UserSummary[]> {
  const users: UserSummary[] = []
  let cursor: string | undefined
  do {
    const page = await offline.services.operators.listUsers(PAGE, cursor)
    users.push(...page.users)
    cursor = page.cursor ?? undefined
  } while (cursor !== undefined)
  return users
}

// ---- export ---------------------------------------------------------------

export interface ManifestEntry {
  userId: string
  /** The file in the folder holding the user's Yjs state. */
  file: string
  bytes: number
  summary: UserSummary
}

export interface ExportManifest {
  version: 1
  exportedAt: string
  dataDir: string
  users: ManifestEntry[]
}

/**
 * `<encodeURIComponent(userId)>.yjs`, unique in the folder even on a
 * case-insensitive file system (`~2`, `~3`… on a clash); a long id is cut
 * and given a hash of itself. The manifest maps each file to its user.
 */
export function fileNameFor(userId: string, used: Set<string>): string {
  let base = encodeURIComponent(userId)
  if (base.length > 180) base = `${base.slice(0, 150).replace(/%[0-9A-F]?$/i, '')}~${createHash('sha256').update(userId).digest('hex').slice(0, 16)}`
  let name = `${base}.yjs`
  for (let n = 2; used.has(name.toLowerCase()); n++) name = `${base}~${n}.yjs`
  used.add(name.toLowerCase())
  return name
}

/** Writes every user's document (its Yjs state) to `folder`, and the manifest. */
export async function exportAll(offline: Offline, folder: string, startProgress: (total: number) => Progress): Promise<ExportManifest> {
  const { operators } = offline.services
  await mkdir(folder, { recursive: true })
  const users = await allUsers(offline)
  const bar = startProgress(users.length)
  const used = new Set<string>([MANIFEST])
  const entries: ManifestEntry[] = []
  try {
    for (const summary of users) {
      const doc = await operators.storedDocument(summary.userId)
      try {
        const state = Y.encodeStateAsUpdate(doc.doc)
        const file = fileNameFor(summary.userId, used)
        await writeFile(path.join(folder, file), state)
        entries.push({ userId: summary.userId, file, bytes: state.byteLength, summary })
      } finally {
        doc.doc.destroy()
      }
      bar.tick()
    }
  } finally {
    bar.stop()
  }
  const manifest: ExportManifest = { version: 1, exportedAt: new Date().toISOString(), dataDir: offline.dataDir, users: entries }
  await writeFile(path.join(folder, MANIFEST), JSON.stringify(manifest, null, 2) + '\n')
  return manifest
}

// ---- import ---------------------------------------------------------------

export interface ImportResult {
  userId: string
  file: string
  /** The snapshot the file became (`reason: 'import'`). */
  snapshot?: SnapshotMeta
  /** With `--restore`: the restore that made it the user's content. */
  restore?: RestoreResult
  /** Why this file was not imported (the others still are). */
  error?: string
}

/** The folder's files and their users: from the manifest, else every `*.yjs` named by `encodeURIComponent(userId)`. */
export async function importEntries(folder: string): Promise<{ userId: string; file: string }[]> {
  const manifestFile = path.join(folder, MANIFEST)
  if (existsSync(manifestFile)) {
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as Partial<ExportManifest>
    if (!Array.isArray(manifest.users)) throw new Error(`${manifestFile} is not an export manifest (no users list)`)
    return manifest.users.map(({ userId, file }) => ({ userId, file }))
  }
  const files = (await readdir(folder)).filter((f) => f.endsWith('.yjs')).sort()
  return files.map((file) => {
    let userId: string
    try {
      userId = decodeURIComponent(file.slice(0, -'.yjs'.length))
    } catch {
      userId = ''
    }
    return { userId, file }
  })
}

/**
 * Stores each file of `folder` as its user's snapshot (`reason: 'import'`)
 * and, with `restore`, restores the user to it: the user's live content
 * becomes the file's, as forward changes (a `before-restore` snapshot first).
 */
export async function importAll(
  offline: Offline,
  folder: string,
  options: { restore: boolean; label?: string },
  startProgress: (total: number) => Progress,
): Promise<ImportResult[]> {
  const { operators } = offline.services
  const entries = await importEntries(folder)
  const bar = startProgress(entries.length)
  const results: ImportResult[] = []
  try {
    for (const { userId, file } of entries) {
      const result: ImportResult = { userId, file }
      results.push(result)
      try {
        if (typeof userId !== 'string' || userId.length === 0) throw new Error('no user id for this file (its name is not an encoded user id)')
        const state = await readFile(path.join(folder, file))
        result.snapshot = await operators.importSnapshot(userId, state, options.label)
        if (options.restore) result.restore = await operators.restore(userId, { snapshotId: result.snapshot.id })
      } catch (err) {
        result.error = err instanceof Error ? err.message : String(err)
      }
      bar.tick()
    }
  } finally {
    bar.stop()
  }
  return results
}

// ---- verify ---------------------------------------------------------------

export interface VerifyProblem {
  userId: string
  problem: string
}

/**
 * Where the entity index disagrees with the document: an entity map not
 * indexed, an index entry whose entity is not in the document, an entry whose
 * `deleted` differs from the map's `_deleted`.
 */
export function indexProblems(sync: SyncDocument): string[] {
  const problems: string[] = []
  for (const { spec, id, map } of entitiesOf(sync.doc)) {
    const record = sync.entities.get(entityKey(spec.type, id))
    const deleted = map.get(DELETED) === true
    if (!record) problems.push(`${spec.type} ${id}: in the document, not in the entity index`)
    else if (record.deleted !== deleted) problems.push(`${spec.type} ${id}: the index says deleted=${record.deleted}, the document's _deleted is ${JSON.stringify(map.get(DELETED)) ?? 'unset'}`)
  }
  for (const record of sync.entities.values()) {
    if (!entityMap(sync.doc, ENTITY_SPECS[record.type], record.id)) problems.push(`${record.type} ${record.id}: in the entity index, not in the document`)
  }
  return problems
}

/** Loads every user's document as stored and checks its index against it; writes nothing. */
export async function verifyAll(offline: Offline, startProgress: (total: number) => Progress): Promise<{ checked: number; problems: VerifyProblem[] }> {
  const { operators } = offline.services
  const users = await allUsers(offline)
  const bar = startProgress(users.length)
  const problems: VerifyProblem[] = []
  try {
    for (const { userId } of users) {
      let doc: SyncDocument | undefined
      try {
        doc = await operators.storedDocument(userId)
      } catch (err) {
        problems.push({ userId, problem: `the document does not load: ${err instanceof Error ? err.message : String(err)}` })
      }
      if (doc) {
        try {
          for (const problem of indexProblems(doc)) problems.push({ userId, problem })
        } finally {
          doc.doc.destroy()
        }
      }
      bar.tick()
    }
  } finally {
    bar.stop()
  }
  return { checked: users.length, problems }
}

// ---- compact --------------------------------------------------------------

export interface CompactResult {
  userId: string
  bytesBefore: number
  bytesAfter: number
}

/** Compacts every user's update log (each into one entry, its document's state). */
export async function compactAll(offline: Offline, startProgress: (total: number) => Progress): Promise<CompactResult[]> {
  const { operators } = offline.services
  const users = await allUsers(offline)
  const bar = startProgress(users.length)
  const results: CompactResult[] = []
  try {
    for (const { userId } of users) {
      results.push({ userId, ...(await operators.compact(userId)) })
      bar.tick()
    }
  } finally {
    bar.stop()
  }
  return results
}
