/**
 * @superclip/sync-client: an offline-first SuperClip Sync device for Node 20+
 * and browsers. See client/README.md.
 */
export { SyncClient } from './client.js'
export type { ChangeEvent, EntityChange, SyncClientEvents, SyncClientOptions, SyncProgress, SyncStatus } from './client.js'
export { Collection } from './collection.js'
export type { Conflict, ConflictResolution, Winner } from './conflicts.js'
export type { BackoffOptions } from './backoff.js'
export type { TokenSource } from './connection.js'
export type * from './entities.js'
export { SyncClientError } from './errors.js'
export type { ConflictRecord, ConflictVersion } from './protocol.js'
export { ENTITY_SPECS, ENTITY_TYPES } from './schema.js'
export type { EntitySpec, EntityType, FieldKind, FieldSpec, Json } from './schema.js'
export type { StorageOption } from './storage/store.js'
