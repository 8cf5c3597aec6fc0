/**
 * One validator per client-to-server payload (protocol §§4, 5, 7).
 * Handlers receive `unknown` and get back a typed value or a SyncError
 * with code INVALID_PAYLOAD that names the offending field.
 */
import { z } from 'zod'
import { DELETED, DELETED_AT, ENTITY_SPECS } from '../models/entity-schema.js'
import type { ChangeInput } from '../services/json-changes.js'
import type { Resolution } from '../services/conflict-resolution.js'
import { SyncEntityType, SyncOperationType } from '../types/sync.js'
import { ErrorCode, SyncError } from '../utils/errors.js'

export const DEVICE_ID = /^[A-Za-z0-9._:-]{1,128}$/

/** Binary attachments arrive as Buffers (a Uint8Array subclass); arrays of numbers and base64 are refused. */
const binary = z.instanceof(Uint8Array, { message: 'must be binary (a Buffer or Uint8Array attachment)' })
const requestId = z.string().min(1).max(128).optional()
const deviceId = z.string().regex(DEVICE_ID, 'must be 1-128 characters of [A-Za-z0-9._:-]')

const syncRequest = z.object({
  deviceId,
  stateVector: binary.optional(),
  lastSyncTimestamp: z.number().int().nonnegative().optional(),
  entities: z.array(z.enum(SyncEntityType)).max(16).optional(),
  limit: z.number().int().min(1).max(5000).optional(),
  includeDeleted: z.boolean().optional(),
  requestId,
})

const syncUpdate = z.object({ update: binary, requestId })

/** Pause and resume take no fields but an optional requestId; no payload at all (or null) is fine. */
const control = z.object({ requestId }).nullish()

const entityId = z.string().min(1).max(128)

const entityChange = z.object({
  id: z.string().min(1).max(128),
  userId: z.string().optional(),
  deviceId: z.string().optional(),
  entityType: z.enum(SyncEntityType),
  entityId: entityId.optional(),
  operationType: z.enum(SyncOperationType).optional(),
  data: z.record(z.string(), z.unknown()).default({}),
  timestamp: z.number().optional(),
  version: z.number().int().nonnegative().default(0),
  requestId,
})

const conflictResolution = z.object({
  conflictId: z.string().min(1).max(128),
  winningVersion: z.enum(['server', 'client', 'merged']),
  mergedData: z.record(z.string(), z.unknown()).optional(),
  requestId,
})

const statusRequest = z.union([deviceId, z.object({ deviceId, requestId })])

export type SyncRequestPayload = z.infer<typeof syncRequest>
export type SyncUpdatePayload = z.infer<typeof syncUpdate>

function parser<T>(schema: z.ZodType<T>) {
  return (payload: unknown): T => {
    const parsed = schema.safeParse(payload)
    if (parsed.success) return parsed.data
    const issue = parsed.error.issues[0]
    const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : ''
    throw new SyncError(ErrorCode.INVALID_PAYLOAD, `${where}${issue?.message ?? 'invalid payload'}`)
  }
}

export const parseSyncRequest = parser(syncRequest)
export const parseSyncUpdate = parser(syncUpdate)
export const parseControl = parser(control)
const parseResolution = parser(conflictResolution)
export function parseConflictResolution(payload: unknown): Resolution {
  refuseHostileShape(payload, 'payload')
  return parseResolution(payload)
}

/** `sync:status` takes `{ deviceId }` or a bare device id string. */
export function parseStatusRequest(payload: unknown): { deviceId: string } {
  const parsed = parser(statusRequest)(payload)
  return typeof parsed === 'string' ? { deviceId: parsed } : parsed
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype'])
/** JSON values nest at most this deep (a payload is an object holding `data` holding a value). */
export const MAX_JSON_DEPTH = 32

/**
 * Throws INVALID_PAYLOAD if `value` nests deeper than MAX_JSON_DEPTH or holds a
 * prototype-polluting key at any depth. Iterative: a hostile depth cannot
 * overflow the stack here, and the schema parsing that follows never sees it.
 */
function refuseHostileShape(value: unknown, path: string): void {
  const stack: { value: unknown; path: string; depth: number }[] = [{ value, path, depth: 0 }]
  for (let next = stack.pop(); next; next = stack.pop()) {
    if (typeof next.value !== 'object' || next.value === null) continue
    if (next.depth >= MAX_JSON_DEPTH) {
      throw new SyncError(ErrorCode.INVALID_PAYLOAD, `${next.path}: nested deeper than ${MAX_JSON_DEPTH} levels`)
    }
    for (const key of Object.keys(next.value)) {
      const at = `${next.path}.${key}`
      if (FORBIDDEN_KEYS.has(key)) throw new SyncError(ErrorCode.INVALID_PAYLOAD, `${at}: the key ${key} is not allowed`)
      stack.push({ value: (next.value as Record<string, unknown>)[key], path: at, depth: next.depth + 1 })
    }
  }
}

/**
 * A `sync:entity_*` payload as a change to apply: the socket's own user (another
 * `userId` is FORBIDDEN), the event's operation, and `data` checked field by
 * field against the entity schema (protocol §3).
 */
export function parseEntityChange(
  payload: unknown,
  operation: SyncOperationType,
  socketUserId: string,
): ChangeInput & { requestId?: string } {
  // Before any parsing: copying `{"__proto__": ...}` into a new object would set its prototype.
  refuseHostileShape(payload, 'payload')
  const c = parser(entityChange)(payload)
  if (c.userId !== undefined && c.userId !== socketUserId) {
    throw new SyncError(ErrorCode.FORBIDDEN, 'userId is not the user this socket authenticated as')
  }
  if (c.operationType !== undefined && c.operationType !== operation) {
    throw new SyncError(ErrorCode.INVALID_PAYLOAD, `operationType ${c.operationType} does not match the event (${operation})`)
  }
  const { id: dataId, ...data } = c.data
  if (dataId !== undefined && (typeof dataId !== 'string' || (c.entityId !== undefined && dataId !== c.entityId))) {
    throw new SyncError(ErrorCode.INVALID_PAYLOAD, 'data.id must be the entity id')
  }
  const id = c.entityId ?? dataId
  const parsedId = entityId.safeParse(id)
  if (!parsedId.success) throw new SyncError(ErrorCode.INVALID_PAYLOAD, 'entityId (or data.id) must be 1-128 characters')
  const spec = ENTITY_SPECS[c.entityType]
  for (const [field, value] of Object.entries(data)) {
    if (field === DELETED || field === DELETED_AT) {
      throw new SyncError(ErrorCode.INVALID_PAYLOAD, `data.${field} is set by sync:entity_deleted`)
    }
    const fieldSpec = spec.fields[field]
    if (!fieldSpec) throw new SyncError(ErrorCode.INVALID_PAYLOAD, `data.${field} is not a field of ${spec.type}`)
    const ok = fieldSpec.value.safeParse(value)
    if (!ok.success) throw new SyncError(ErrorCode.INVALID_PAYLOAD, `data.${field}: ${ok.error.issues[0]?.message ?? 'invalid value'}`)
  }
  return {
    id: c.id,
    entityType: c.entityType,
    entityId: parsedId.data,
    operationType: operation,
    data,
    version: c.version,
    ...(c.requestId === undefined ? {} : { requestId: c.requestId }),
  }
}

const operationType = z.object({ operationType: z.enum(SyncOperationType) })

/** A change of an HTTP batch (protocol §10): as `parseEntityChange`, its operation from its own `operationType`. */
export function parseOperationChange(payload: unknown, socketUserId: string): ChangeInput & { requestId?: string } {
  return parseEntityChange(payload, parser(operationType)(payload).operationType, socketUserId)
}

/** The client's requestId, if the payload carries a usable one (echoed in `sync:error`). */
export function requestIdOf(payload: unknown): string | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined
  const id = (payload as { requestId?: unknown }).requestId
  return typeof id === 'string' && id.length <= 128 ? id : undefined
}
