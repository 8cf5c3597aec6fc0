/** Building conflict records (PROTOCOL section 6). */
import { randomUUID } from 'node:crypto'
import type { EntitySpec } from '../models/entity-schema.js'
import type { EntityRecord } from '../models/records.js'
import type { SyncConflict } from '../types/sync.js'

export interface ConflictInput {
  userId: string
  spec: EntitySpec
  entityId: string
  field: string
  /** The entity's index entry before the conflicting change. */
  record: EntityRecord | undefined
  serverValue: unknown
  clientValue: unknown
  clientVersion: number
  clientDeviceId: string
  at: number
}

export function newConflict(c: ConflictInput): SyncConflict {
  return {
    id: randomUUID(),
    userId: c.userId,
    entityType: c.spec.type,
    entityId: c.entityId,
    field: c.field,
    serverVersion: {
      value: c.serverValue,
      version: c.record?.fields[c.field]?.version ?? c.record?.version ?? 0,
      deviceId: c.record?.fields[c.field]?.deviceId ?? c.record?.deviceId ?? '',
      timestamp: c.record?.fields[c.field]?.timestamp ?? c.record?.timestamp ?? 0,
    },
    clientVersion: { value: c.clientValue, version: c.clientVersion, deviceId: c.clientDeviceId, timestamp: c.at },
    createdAt: c.at,
    resolved: false,
  }
}

/** Structural equality of JSON values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a)
  const kb = Object.keys(b)
  if (ka.length !== kb.length) return false
  return ka.every((k) => jsonEqual((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}
