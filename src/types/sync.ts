/**
 * The seed's public sync types (PROTOCOL.md sections 4–7).
 *
 * These are the shapes JSON clients see on the wire. Event names are declared
 * once here and typed into `Server<...>` by `types/events.ts`.
 */

/** Every Socket.IO event name of the protocol, in both directions. */
export enum SyncEventType {
  REQUEST = 'sync:request',
  START = 'sync:start',
  RESPONSE = 'sync:response',
  COMPLETE = 'sync:complete',
  UPDATE = 'sync:update',
  ENTITY_CREATED = 'sync:entity_created',
  ENTITY_UPDATED = 'sync:entity_updated',
  ENTITY_DELETED = 'sync:entity_deleted',
  CONFLICT = 'sync:conflict',
  STATUS = 'sync:status',
  PAUSE = 'sync:pause',
  RESUME = 'sync:resume',
  ERROR = 'sync:error',
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

/** One change record of the JSON API (PROTOCOL section 5). */
export interface SyncChange {
  /** Client-made unique change id; the idempotency key. */
  id: string
  userId: string
  deviceId: string
  entityType: SyncEntityType
  /** The entity's id (`data.id` is accepted when absent). */
  entityId?: string
  operation: SyncOperationType
  data: Record<string, unknown>
  /** Server commit clock (ms) on server-to-client changes. */
  timestamp: number
  /** Server-assigned entity version; on client-to-server changes, the version last seen. */
  version: number
}

export interface SyncRequest {
  deviceId: string
  /** Present: a Yjs state-vector sync. Absent: a change-log sync. */
  stateVector?: Uint8Array
  lastSyncTimestamp?: number
  entities?: SyncEntityType[]
  limit?: number
  includeDeleted?: boolean
  requestId?: string
}

export interface SyncStatus {
  userId: string
  deviceId: string
  lastSyncTimestamp: number | null
  pendingChanges: number
  inProgress: boolean
  lastError: string | null
  entityCounts: Record<SyncEntityType, number>
}

export interface SyncConflict {
  id: string
  userId: string
  entityType: SyncEntityType
  entityId: string
  field: string
  serverVersion: { value: unknown; version: number; deviceId: string; timestamp: number }
  clientVersion: { value: unknown; version: number; deviceId: string; timestamp: number }
  createdAt: number
  resolved: boolean
  resolution?: 'server' | 'client' | 'merged'
  resolvedAt?: number
}
