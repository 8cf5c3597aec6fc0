/**
 * What the operators' API returns (protocol §9), declared once: the service
 * builds these, the routes' schemas describe them, and the web console
 * (web/console/) imports them as types.
 */
import type { DocumentSummary } from '../models/records.js'
import type { SyncEntityType } from './sync.js'

export type { DocumentSummary, EntityCounts, SnapshotMeta, SnapshotReason } from '../models/records.js'

export interface UserSummary extends DocumentSummary {
  userId: string
  devicesConnected: number
  loaded: boolean
}

export interface UsersPage {
  users: UserSummary[]
  /** Null on the last page. */
  cursor: string | null
}

export interface DeviceInfo {
  deviceId: string
  connected: boolean
  lastSeenAt: number | null
  lastSyncTimestamp: number | null
  revoked: boolean
}

export interface RestoreCounts {
  /** Entities created since the snapshot, now soft-deleted. */
  deleted: number
  /** Entities deleted (or purged) since, now live again. */
  revived: number
  /** Entities whose fields were set back. */
  updated: number
}

export interface RestoreResult {
  restoredFrom: string
  /** The `before-restore` snapshot (none on a dry run). */
  snapshotBefore: string | null
  changed: RestoreCounts
  serverTimestamp: number
}

export interface TrashEntry {
  entityType: SyncEntityType
  entityId: string
  deletedAt: number
  /** The device whose change deleted it (its last change). */
  deviceId: string
}
