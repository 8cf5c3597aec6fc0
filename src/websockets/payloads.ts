/**
 * One validator per client-to-server payload (PROTOCOL sections 4, 5, 7).
 * Handlers receive `unknown` and get back a typed value or a SyncError
 * with code INVALID_PAYLOAD that names the offending field.
 */
import { z } from 'zod'
import { SyncEntityType } from '../types/sync.js'
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

/** Pause and resume take no fields but an optional requestId; no payload at all is fine. */
const control = z.object({ requestId }).optional()

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

/** The client's requestId, if the payload carries a usable one (echoed in `sync:error`). */
export function requestIdOf(payload: unknown): string | undefined {
  if (typeof payload !== 'object' || payload === null) return undefined
  const id = (payload as { requestId?: unknown }).requestId
  return typeof id === 'string' && id.length <= 128 ? id : undefined
}
