/**
 * What the server keeps beside the Yjs document, per user (protocol §§5–7):
 * the entity index, open and resolved conflicts, applied change ids, and each
 * device's last completed sync.
 */
import type { SyncConflict, SyncEntityType } from '../types/sync.js'

/** A field's last change. Read-only: one object may stamp several fields of a change (entity-index.ts). */
export interface FieldChange {
  readonly version: number
  readonly deviceId: string
  readonly timestamp: number
}

/** One entity's entry in the index: its server version and when each field last changed. */
export interface EntityRecord {
  type: SyncEntityType
  id: string
  /** Starts at 1 and grows by one with every applied change, whatever its path. */
  version: number
  /** Field name → the last change of that field: entity version, device and server time. */
  fields: Record<string, FieldChange>
  deleted: boolean
  /** Server commit clock value of the last change (ms). */
  timestamp: number
  /** The device whose change was applied last. */
  deviceId: string
}

/** The acknowledgement of an applied JSON change, kept for idempotent resends. */
export interface ChangeResult {
  entityId: string
  version: number
  serverTimestamp: number
  conflicts: string[]
}

export interface AppliedChange {
  changeId: string
  result: ChangeResult
  /** Server time (ms) it was applied; entries expire after `CHANGE_ID_TTL_MS`. */
  appliedAt: number
}

/** How long an applied change id is remembered for idempotent resends. */
export const CHANGE_ID_TTL_MS = 7 * 24 * 3600_000

/** A device's last completed sync (protocol §7). */
export interface DeviceSyncState {
  deviceId: string
  lastSyncTimestamp: number
  mode: 'yjs' | 'changes'
  /** For a Yjs sync: the server state vector the device was brought up to (base64). */
  stateVector?: string
  /** Server time (ms) the device was last connected or synced (absent in records written before it existed). */
  lastSeenAt?: number
}

/** Live entities per type. */
export type EntityCounts = Record<SyncEntityType, number>

/** What the operators' user list shows of a document without loading it; stored with every commit. */
export interface DocumentSummary {
  /** The stored update log's bytes (the plan's document-size estimate). */
  bytes: number
  entityCounts: EntityCounts
  /** Server time (ms) of the last commit. */
  lastActivityAt: number
}

export type SnapshotReason = 'manual' | 'scheduled' | 'before-restore' | 'import'

/** A snapshot: the document's Yjs state at one moment (stored apart) and this metadata (protocol §9). */
export interface SnapshotMeta {
  id: string
  userId: string
  takenAt: number
  /** Bytes of the snapshot's Yjs state. */
  bytes: number
  entityCounts: EntityCounts
  reason: SnapshotReason
  label?: string
  /** The document's commit clock when it was taken (0 for an import): changes after it are not in it. */
  clock: number
}

export type StoredConflict = SyncConflict

/** A conflict as stored before the seed's field names (up to 0.1.0): `createdAt`, `resolution`. */
interface LegacyConflict {
  createdAt?: number
  resolution?: SyncConflict['winningVersion']
}

/**
 * A stored conflict read as today's record: one written before the seed's
 * names gets them (`createdAt` → `timestamp`, `resolution` → `winningVersion`),
 * and its `clientVersion` without a `value` (JSON dropped the undefined of a
 * value collected on the device) is marked `collected` (protocol §6).
 */
export function readStoredConflict(stored: StoredConflict & LegacyConflict): StoredConflict {
  const { createdAt, resolution, ...conflict } = stored
  if (conflict.timestamp === undefined && createdAt !== undefined) conflict.timestamp = createdAt
  if (conflict.winningVersion === undefined && resolution !== undefined) conflict.winningVersion = resolution
  const client = conflict.clientVersion as { value?: unknown; collected?: true }
  if (!('value' in client) && !client.collected) conflict.clientVersion = { ...client, collected: true }
  return conflict
}

export const entityKey = (type: SyncEntityType, id: string): string => `${type}\u0000${id}`
