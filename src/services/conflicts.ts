/** Building conflict records (protocol §6). */
import { randomUUID } from 'node:crypto'
import type { EntitySpec } from '../models/entity-schema.js'
import type { EntityRecord } from '../models/records.js'
import type { ConflictVersion, SyncConflict } from '../types/sync.js'

/** What a device wrote: its value, or none when Yjs had collected it on the device before it was sent. */
export type ClientValue = { value: unknown } | { collected: true }

export interface ConflictInput {
  userId: string
  spec: EntitySpec
  entityId: string
  field: string
  /** The entity's index entry before the conflicting change. */
  record: EntityRecord | undefined
  serverValue: unknown
  client: ClientValue
  clientVersion: number
  clientDeviceId: string
  at: number
}

export function newConflict(c: ConflictInput): SyncConflict {
  const field = c.record?.fields[c.field]
  const serverVersion: ConflictVersion = {
    value: c.serverValue,
    version: field?.version ?? c.record?.version ?? 0,
    deviceId: field?.deviceId ?? c.record?.deviceId ?? '',
    timestamp: field?.timestamp ?? c.record?.timestamp ?? 0,
  }
  const clientVersion: ConflictVersion = { ...c.client, version: c.clientVersion, deviceId: c.clientDeviceId, timestamp: c.at }
  return {
    id: randomUUID(),
    userId: c.userId,
    entityType: c.spec.type,
    entityId: c.entityId,
    field: c.field,
    serverVersion,
    clientVersion,
    timestamp: c.at,
    resolved: false,
  }
}
