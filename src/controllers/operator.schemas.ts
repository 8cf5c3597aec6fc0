/** Schemas of the operators' routes (protocol §9), in zod: validation, serialization and the OpenAPI document. */
import { z } from 'zod'
import { SyncEntityType } from '../types/sync.js'
import { DEVICE_ID } from '../websockets/payloads.js'
import { errorReply } from './sync.schemas.js'

const ms = z.number().describe('ms since the epoch')
const entityCounts = z.record(z.enum(SyncEntityType), z.number().int())
const userId = z.string().min(1).max(128)
const id = z.string().min(1).max(128)

export const adminErrors = { 400: errorReply, 401: errorReply, 404: errorReply, 413: errorReply }

export const userParams = z.object({ userId })
export const snapshotParams = z.object({ userId, id })
export const deviceParams = z.object({ userId, deviceId: z.string().regex(DEVICE_ID, 'must be 1-128 characters of [A-Za-z0-9._:-]') })

export const userSummary = z
  .object({
    userId: z.string(),
    bytes: z.number().int().describe('Stored update log bytes'),
    entityCounts,
    devicesConnected: z.number().int(),
    lastActivityAt: ms,
    loaded: z.boolean().describe('Whether the document is in memory'),
  })
  .meta({ id: 'UserSummary' })

export const usersQuery = z.object({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().min(1).optional().describe('The cursor of the previous page'),
})
export const usersPage = z.object({ users: z.array(userSummary), cursor: z.string().nullable().describe('Null on the last page') })

const documentJson = z
  .record(z.string(), z.record(z.string(), z.record(z.string(), z.unknown())))
  .describe('{ clips: { [id]: fields }, folders: …, sets: …, tags: …, templates: …, settings: … }, soft-deleted entities included')

export const snapshotMeta = z
  .object({
    id: z.string(),
    userId: z.string(),
    takenAt: ms,
    bytes: z.number().int(),
    entityCounts,
    reason: z.enum(['manual', 'scheduled', 'before-restore', 'import']),
    label: z.string().optional(),
    clock: ms.describe("The document's commit clock when it was taken (0 for an import)"),
  })
  .meta({ id: 'SnapshotMeta' })

export const userDocument = documentJson
export const snapshotWithDocument = snapshotMeta.extend({ document: documentJson })
export const snapshotList = z.object({ snapshots: z.array(snapshotMeta) })
export const snapshotBody = z.object({ label: z.string().max(200).optional() }).optional()
export const importQuery = z.object({ label: z.string().max(200).optional() })

export const restoreBody = z
  .object({
    snapshotId: id.optional(),
    at: z.number().int().nonnegative().optional().describe('Restore the newest snapshot taken at or before this time'),
    entityType: z.enum(SyncEntityType).optional(),
    entityId: id.optional(),
    dryRun: z.boolean().optional().describe('Only count what would change'),
  })
  .refine((b) => (b.snapshotId === undefined) !== (b.at === undefined), { message: 'give snapshotId or at, not both' })
  .refine((b) => (b.entityType === undefined) === (b.entityId === undefined), { message: 'entityType and entityId go together' })

export const restoreReply = z.object({
  restoredFrom: z.string(),
  snapshotBefore: z.string().nullable(),
  changed: z.object({
    deleted: z.number().int().describe('Entities created since the snapshot, now soft-deleted'),
    revived: z.number().int().describe('Entities deleted since, live again'),
    updated: z.number().int().describe('Entities whose fields were set back'),
  }),
  serverTimestamp: ms,
})

export const trashList = z.object({
  entities: z.array(z.object({ entityType: z.enum(SyncEntityType), entityId: z.string(), deletedAt: ms, deviceId: z.string() })),
})
export const entityRef = z.object({ entityType: z.enum(SyncEntityType), entityId: id })
export const trashRestoreReply = z.object({ entityType: z.enum(SyncEntityType), entityId: z.string(), version: z.number().int(), serverTimestamp: ms })

export const deviceList = z.object({
  devices: z.array(
    z.object({
      deviceId: z.string(),
      connected: z.boolean(),
      lastSeenAt: ms.nullable(),
      lastSyncTimestamp: ms.nullable(),
      revoked: z.boolean(),
    }),
  ),
})

export const compactReply = z.object({ bytesBefore: z.number().int(), bytesAfter: z.number().int() })
