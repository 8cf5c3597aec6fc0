/**
 * The wire, as this client uses it (the server's docs/protocol.md): event
 * names and the payloads it sends and reads. The one place that knows them.
 */
import type { EntityType, Json } from './schema.js'

export const EVENTS = {
  request: 'sync:request',
  response: 'sync:response',
  update: 'sync:update',
  conflict: 'sync:conflict',
  conflicts: 'sync:conflicts',
  error: 'sync:error',
} as const

/** An error as the server reports it: on a refused ack, in `sync:error`, in a refused handshake's `data`. */
export interface ProtocolError {
  code: string
  message: string
  retryAfterMs?: number
}

export type Reply<T = Record<string, unknown>> = ({ ok: true } & T) | { ok: false; error: ProtocolError }

/** `sync:error` from the server: a failed event, or a notice (`event` `shutdown`, `abuse`, `auth`, `connect`). */
export interface ErrorNotice extends ProtocolError {
  event: string
  requestId?: string
}

/** Binary values arrive as a Buffer in Node and an ArrayBuffer in browsers. */
export type WireBinary = Uint8Array | ArrayBuffer

export interface YjsResponse {
  mode: 'yjs'
  update: WireBinary
  stateVector: WireBinary
  serverTimestamp: number
}

export interface Relay {
  update: WireBinary
  deviceId: string
  serverTimestamp: number
}

export const bytes = (value: WireBinary): Uint8Array => (value instanceof Uint8Array ? value : new Uint8Array(value))

/** One side of a conflict: the value (absent when the device had already collected it), who wrote it, when. */
export interface ConflictVersion {
  value?: Json
  collected?: true
  version: number
  deviceId: string
  timestamp: number
}

/** A `SyncConflict` as the server sends it. */
export interface ConflictRecord {
  id: string
  userId: string
  entityType: EntityType
  entityId: string
  field: string
  serverVersion: ConflictVersion
  clientVersion: ConflictVersion
  timestamp: number
  resolved: boolean
  winningVersion?: 'server' | 'client' | 'merged'
  mergedData?: Record<string, Json>
  resolvedAt?: number
}

/** `retryAfterMs` of a refusal, if it is a positive number. */
export const retryHint = (error: { retryAfterMs?: unknown } | undefined): number | undefined =>
  typeof error?.retryAfterMs === 'number' && error.retryAfterMs > 0 ? error.retryAfterMs : undefined
