/**
 * The seed's public sync types (the original spec, `sync.handler.spec.md`;
 * docs/protocol.md §§4–7), to the letter: other code is written against these names and types.
 * Additions the protocol allows are marked as such; nothing of the seed is
 * renamed or dropped (test/seed-contract.test.ts holds them to the seed).
 *
 * Event names are declared once here and typed into `Server<...>` by
 * `types/events.ts`.
 */
/* eslint-disable @typescript-eslint/no-explicit-any -- the seed types `data`, `serverVersion`, `clientVersion` and `mergedData` as `any`; code written against it must compile */

/** Every Socket.IO event name of the protocol, in both directions. */
export enum SyncEventType {
  SYNC_REQUEST = 'sync:request',
  SYNC_RESPONSE = 'sync:response',
  SYNC_ERROR = 'sync:error',
  SYNC_COMPLETE = 'sync:complete',
  SYNC_STATUS = 'sync:status',
  SYNC_CONFLICT = 'sync:conflict',
  ENTITY_UPDATED = 'sync:entity_updated',
  ENTITY_CREATED = 'sync:entity_created',
  ENTITY_DELETED = 'sync:entity_deleted',
  SYNC_START = 'sync:start',
  SYNC_PAUSE = 'sync:pause',
  SYNC_RESUME = 'sync:resume',
  /** Not in the seed: a Yjs update, both ways (protocol §4). */
  SYNC_UPDATE = 'sync:update',
  /** Not in the seed: the user's open conflicts, in the ack (protocol §6). */
  SYNC_CONFLICTS = 'sync:conflicts',
}

/** The six entity types; each lives in the document's map named by its plural. */
export enum SyncEntityType {
  CLIP = 'clip',
  FOLDER = 'folder',
  SET = 'set',
  TAG = 'tag',
  TEMPLATE = 'template',
  SETTING = 'setting',
}

export enum SyncOperationType {
  CREATE = 'create',
  UPDATE = 'update',
  DELETE = 'delete',
}

/** One change record of the JSON API (protocol §5). */
export interface SyncChange {
  /** Client-made unique change id; the idempotency key. */
  id: string
  entityType: SyncEntityType
  operationType: SyncOperationType
  /** Server commit clock (ms) on server-to-client changes. */
  timestamp: number
  deviceId: string
  userId: string
  /** The entity's fields: all of them from the server; those to set from a client. */
  data?: any
  /** Server-assigned entity version; on client-to-server changes, the version last seen. */
  version: number
  /** Addition (protocol §5): the entity's id; `data.id` is accepted when absent. */
  entityId?: string
}

export interface SyncRequest {
  deviceId: string
  entities?: SyncEntityType[]
  lastSyncTimestamp?: number
  limit?: number
  includeDeleted?: boolean
  /** Addition: present, a Yjs state-vector sync (section 4); absent, a change-log sync (section 5). */
  stateVector?: Uint8Array
  /** Addition: echoed in `sync:error` (section 2). */
  requestId?: string
}

export interface SyncStatus {
  deviceId: string
  userId: string
  /** The `serverTimestamp` of the device's last completed sync; 0 before its first. */
  lastSyncTimestamp: number
  inProgress: boolean
  entityCounts: Record<SyncEntityType, number>
  /** The last error reported to this socket, `CODE: message`; absent when there was none. */
  lastError?: string
  pendingChanges: number
}

/**
 * One side of a conflict (protocol §6): the value and the change that
 * wrote it. `collected: true` (and no `value`) when a Yjs device had already
 * garbage-collected its losing value before it sent it.
 */
export interface ConflictVersion {
  value?: unknown
  version: number
  deviceId: string
  timestamp: number
  collected?: true
}

export interface SyncConflict {
  id: string
  entityType: SyncEntityType
  entityId: string
  /** A `ConflictVersion`: the value the document kept. */
  serverVersion: any
  /** A `ConflictVersion`: the value that lost. */
  clientVersion: any
  /** When the conflict was detected (server ms). */
  timestamp: number
  resolved: boolean
  /** Set once resolved. */
  winningVersion?: 'server' | 'client' | 'merged'
  /** Set once resolved as `merged`: `{ [field]: value }`, the value written. */
  mergedData?: any
  /** Addition: the user it belongs to. */
  userId: string
  /** Addition: the `manual` field both sides wrote. */
  field: string
  /** Addition: server commit clock of the resolution. */
  resolvedAt?: number
}
