/**
 * Change-log sync for JSON clients (protocol §5): pages of change
 * records in server-timestamp order, read from the by-time index, so that
 * `lastSyncTimestamp: cursor` resumes exactly after the last change a client
 * received, across disconnects. A full sync's first page leads with the
 * critical types (settings, folders, tags, sets, templates) before clips.
 */
import { SYNC_PRIORITY } from '../models/entity-schema.js'
import type { EntityRecord } from '../models/records.js'
import type { DocumentRepository } from '../repositories/document.repository.js'
import type { SyncChange, SyncEntityType } from '../types/sync.js'
import { SyncEntityType as EntityType, SyncOperationType } from '../types/sync.js'
import { toSyncChange } from './entity-index.js'
import type { SyncDocument } from './sync-document.js'

export interface ChangeLogRequest {
  entities?: SyncEntityType[]
  lastSyncTimestamp?: number
  limit?: number
  includeDeleted?: boolean
}

export interface ChangePage {
  changes: SyncChange[]
  hasMore: boolean
  cursor: number
  serverTimestamp: number
}

export const DEFAULT_PAGE = 500
const SCAN_CHUNK = 1000
const priority = new Map(SYNC_PRIORITY.map((t, i) => [t, i]))

export async function changeLogPage(
  sync: SyncDocument,
  repo: DocumentRepository,
  userId: string,
  request: ChangeLogRequest,
): Promise<ChangePage> {
  const full = request.lastSyncTimestamp === undefined
  const after = request.lastSyncTimestamp ?? 0
  const limit = request.limit ?? DEFAULT_PAGE
  const includeDeleted = request.includeDeleted ?? !full
  const types = request.entities ? new Set(request.entities) : undefined
  const wanted = (r: EntityRecord) => (!types || types.has(r.type)) && (includeDeleted || !r.deleted)

  let lead: EntityRecord[] = []
  let scanTypes = wanted
  if (full) {
    // Everything the app needs before it can show clips comes first, if it fits in one page.
    const critical = [...sync.entities.values()].filter((r) => r.type !== EntityType.CLIP && wanted(r))
    if (critical.length < limit) {
      lead = critical.sort((a, b) => (priority.get(a.type) ?? 0) - (priority.get(b.type) ?? 0) || a.timestamp - b.timestamp)
      scanTypes = (r) => r.type === EntityType.CLIP && wanted(r)
    }
  }
  const { records, hasMore, scannedTo } = await scan(sync, repo, after, limit - lead.length, scanTypes)
  const page = [...lead, ...records]
  // Resume after the last change sent; when all is sent, after everything scanned.
  let cursor = hasMore ? (records.at(-1)?.timestamp ?? after) : Math.max(after, scannedTo, ...lead.map((r) => r.timestamp))
  if (!hasMore) {
    // The last page: the caller goes live in this same turn, so it also gets what changed in memory
    // since the index was read (changes still being written, or written while it was read).
    // Stored batches hold every timestamp below those still being written, so "newer than the scan" is exact.
    const sent = new Set(page)
    const scanned = Math.max(after, scannedTo)
    const newer = [...sync.entities.values()].filter((r) => r.timestamp > scanned && !sent.has(r) && wanted(r))
    page.push(...newer.sort((a, b) => a.timestamp - b.timestamp))
    cursor = Math.max(cursor, ...newer.map((r) => r.timestamp))
  }
  const changes = page.map((r) => {
    const change = toSyncChange(sync, r, userId)
    change.operationType = r.deleted ? SyncOperationType.DELETE : full ? SyncOperationType.CREATE : SyncOperationType.UPDATE
    return change
  })
  return { changes, hasMore, cursor, serverTimestamp: sync.clock }
}

/** Up to `limit` wanted records changed after `after`, in timestamp order, from the stored index. */
async function scan(
  sync: SyncDocument,
  repo: DocumentRepository,
  after: number,
  limit: number,
  wanted: (r: EntityRecord) => boolean,
): Promise<{ records: EntityRecord[]; hasMore: boolean; scannedTo: number }> {
  const records: EntityRecord[] = []
  let from = after
  let scannedTo = after
  for (;;) {
    const chunk = await repo.entitiesAfter(sync.id, from, SCAN_CHUNK)
    for (const { ts, entityKey } of chunk) {
      const record = sync.entities.get(entityKey)
      // A record whose in-memory timestamp differs has a newer change not yet stored: it comes live.
      if (!record || record.timestamp !== ts || !wanted(record)) {
        scannedTo = ts
        continue
      }
      if (records.length === limit) return { records, hasMore: true, scannedTo }
      records.push(record)
      scannedTo = ts
    }
    if (chunk.length < SCAN_CHUNK) return { records, hasMore: false, scannedTo }
    from = chunk.at(-1)?.ts ?? from
  }
}
