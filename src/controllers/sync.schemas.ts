/**
 * HTTP sync (protocol §10): the schemas of its routes, in zod. Fastify
 * validates requests (and serializes replies) with them through
 * fastify-type-provider-zod, and `GET /admin/openapi.json` is generated from
 * them by @fastify/swagger. Each change of a batch is validated on its own by
 * the socket path's parser (websockets/payloads.ts), so that one bad change
 * gets its own error result and the others apply.
 */
import { z } from 'zod'
import { DEVICE_ID } from '../websockets/payloads.js'
import { SyncEntityType, SyncOperationType } from '../types/sync.js'
import { ErrorCode } from '../utils/errors.js'

/** Changes in one `POST /v1/sync/changes` at most. */
export const MAX_BATCH = 500

const deviceId = z.string().regex(DEVICE_ID, 'must be 1-128 characters of [A-Za-z0-9._:-]').describe('The device making the request')
const entityTypes = Object.values(SyncEntityType).join('|')
const ms = z.number().describe('Server commit clock, ms')

export const protocolError = z
  .object({
    code: z.enum(Object.values(ErrorCode) as [ErrorCode, ...ErrorCode[]]),
    message: z.string(),
    retryAfterMs: z.number().optional().describe('How long to wait before retrying (RATE_LIMITED, UNAVAILABLE)'),
  })
  .meta({ id: 'ProtocolError' })

export const errorReply = z.object({ error: protocolError }).meta({ id: 'ErrorReply' })

/** The error replies a device route can give. */
export const deviceErrors = { 400: errorReply, 401: errorReply, 403: errorReply, 404: errorReply, 413: errorReply, 429: errorReply, 503: errorReply }

export const syncChange = z
  .object({
    id: z.string().describe('Change id: client-made and idempotent on the way in; srv:<type>:<id>:<version> or the applied change id on the way out'),
    entityType: z.enum(SyncEntityType),
    operationType: z.enum(SyncOperationType),
    timestamp: ms,
    deviceId: z.string(),
    userId: z.string(),
    data: z.record(z.string(), z.unknown()).optional().describe("The entity's fields"),
    version: z.number().int().describe('Entity version: the server\'s on the way out, the one last seen on the way in'),
    entityId: z.string().optional(),
  })
  .meta({ id: 'SyncChange' })

export const changesQuery = z.object({
  deviceId,
  lastSyncTimestamp: z.coerce.number().int().nonnegative().optional().describe('Absent: a full sync; else the cursor of the last page'),
  limit: z.coerce.number().int().min(1).max(5000).optional().describe('Page size, default 500'),
  entities: z
    .string()
    .regex(new RegExp(`^(${entityTypes})(,(${entityTypes}))*$`), `must be a comma-separated list of ${entityTypes.replaceAll('|', ', ')}`)
    .transform((s) => s.split(',') as SyncEntityType[])
    .optional()
    .describe('Entity types to include, comma-separated (default all)'),
  includeDeleted: z
    .enum(['true', 'false'])
    .transform((s) => s === 'true')
    .optional()
    .describe('Default false for a full sync, true for an incremental one'),
})

export const changesPage = z
  .object({ changes: z.array(syncChange), hasMore: z.boolean(), cursor: ms, serverTimestamp: ms })
  .meta({ id: 'ChangesPage' })

export const changesBody = z.object({
  deviceId,
  changes: z
    .array(z.record(z.string(), z.unknown()).describe('A SyncChange with its operationType'))
    .min(1)
    .max(MAX_BATCH)
    .describe(`At most ${MAX_BATCH} changes, applied in order; each is validated and acknowledged on its own`),
})

const changeAck = z
  .object({ ok: z.literal(true), entityId: z.string(), version: z.number().int(), serverTimestamp: ms, conflicts: z.array(z.string()) })
  .meta({ id: 'ChangeAck' })
const refusal = z.object({ ok: z.literal(false), error: protocolError }).meta({ id: 'Refusal' })

export const changesResults = z.object({ results: z.array(z.union([changeAck, refusal])) })

export const statusQuery = z.object({ deviceId })

export const statusReply = z
  .object({
    userId: z.string(),
    deviceId: z.string(),
    lastSyncTimestamp: ms.describe("The device's last completed sync; 0 before its first"),
    inProgress: z.boolean(),
    entityCounts: z.record(z.enum(SyncEntityType), z.number().int()),
    lastError: z.string().optional(),
    pendingChanges: z.number().int().describe("Entities changed since the device's last completed sync"),
    conflicts: z.array(z.string()).describe("The user's unresolved conflict ids"),
    plan: z.enum(['free', 'pro']),
  })
  .meta({ id: 'SyncStatus' })

const conflictVersion = z.object({
  value: z.unknown().optional().describe('Absent when the device had already collected it (then collected: true)'),
  collected: z.literal(true).optional(),
  version: z.number().int(),
  deviceId: z.string(),
  timestamp: ms,
})

export const syncConflict = z
  .object({
    id: z.string(),
    userId: z.string(),
    entityType: z.enum(SyncEntityType),
    entityId: z.string(),
    field: z.string(),
    serverVersion: conflictVersion.describe('The kept value'),
    clientVersion: conflictVersion.describe('The losing value'),
    timestamp: ms.describe('When it was detected'),
    resolved: z.boolean(),
    winningVersion: z.enum(['server', 'client', 'merged']).optional(),
    mergedData: z.record(z.string(), z.unknown()).optional(),
    resolvedAt: ms.optional(),
  })
  .meta({ id: 'SyncConflict' })

export const conflictsReply = z.object({ conflicts: z.array(syncConflict).describe("The user's open conflicts, oldest first") })

export const conflictParams = z.object({ conflictId: z.string().min(1).max(128) })

export const conflictBody = z.object({
  winningVersion: z.enum(['server', 'client', 'merged']),
  mergedData: z.record(z.string(), z.unknown()).optional().describe('For merged: { [field]: value }'),
  deviceId: deviceId.optional().describe('The resolving device, recorded as the change\'s author (default "http")'),
})

export const conflictAck = z
  .object({ ok: z.literal(true), conflictId: z.string(), entityId: z.string(), version: z.number().int(), serverTimestamp: ms })
  .meta({ id: 'ConflictAck' })
