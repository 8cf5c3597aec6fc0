/**
 * The wire, declared once (docs/protocol.md): event names, payloads and socket data,
 * typed into `Server<ClientToServerEvents, ServerToClientEvents, {}, SocketData>`.
 * Client-to-server payloads are `unknown` here on purpose: they are parsed at
 * the edge by `websockets/payloads.ts`, because types are not validation.
 */
import type { ProtocolError } from '../utils/errors.js'
import type { SyncChange, SyncConflict, SyncEventType, SyncStatus } from './sync.js'

export type Plan = 'free' | 'pro'
export type SyncMode = 'yjs' | 'changes'

/** The acknowledgement argument of every client-to-server event (protocol §2). */
export type Reply = ({ ok: true } & Record<string, unknown>) | { ok: false; error: ProtocolError }
export type Ack = (reply: Reply) => void

type ClientEvent = (...args: unknown[]) => void

export interface ClientToServerEvents {
  [SyncEventType.SYNC_REQUEST]: ClientEvent
  [SyncEventType.SYNC_UPDATE]: ClientEvent
  [SyncEventType.ENTITY_CREATED]: ClientEvent
  [SyncEventType.ENTITY_UPDATED]: ClientEvent
  [SyncEventType.ENTITY_DELETED]: ClientEvent
  [SyncEventType.SYNC_CONFLICT]: ClientEvent
  [SyncEventType.SYNC_STATUS]: ClientEvent
  [SyncEventType.SYNC_PAUSE]: ClientEvent
  [SyncEventType.SYNC_RESUME]: ClientEvent
  [SyncEventType.SYNC_CONFLICTS]: ClientEvent
}

export interface SyncStartPayload {
  deviceId: string
  mode: SyncMode
}

export interface YjsSyncResponse {
  mode: 'yjs'
  update: Uint8Array
  stateVector: Uint8Array
  serverTimestamp: number
}

export interface ChangesSyncResponse {
  mode: 'changes'
  changes: SyncChange[]
  hasMore: boolean
  cursor: number
  serverTimestamp: number
}

export interface SyncCompletePayload {
  deviceId: string
  mode: SyncMode
  serverTimestamp: number
  cursor?: number
}

export interface RelayedUpdate {
  update: Uint8Array
  deviceId: string
  serverTimestamp: number
}

export interface SyncErrorPayload extends ProtocolError {
  event: string
  requestId?: string
}

export interface StatusPayload extends SyncStatus {
  conflicts: string[]
  plan: Plan
}

export interface ServerToClientEvents {
  [SyncEventType.SYNC_START]: (payload: SyncStartPayload) => void
  [SyncEventType.SYNC_RESPONSE]: (payload: YjsSyncResponse | ChangesSyncResponse) => void
  [SyncEventType.SYNC_COMPLETE]: (payload: SyncCompletePayload) => void
  [SyncEventType.SYNC_UPDATE]: (payload: RelayedUpdate) => void
  [SyncEventType.ENTITY_CREATED]: (change: SyncChange) => void
  [SyncEventType.ENTITY_UPDATED]: (change: SyncChange) => void
  [SyncEventType.ENTITY_DELETED]: (change: SyncChange) => void
  [SyncEventType.SYNC_CONFLICT]: (conflict: SyncConflict) => void
  [SyncEventType.SYNC_STATUS]: (status: StatusPayload) => void
  [SyncEventType.SYNC_ERROR]: (error: SyncErrorPayload) => void
}

/** Per-socket state. Identity comes only from the verified token, never from a payload. */
export interface SocketData {
  userId: string
  deviceId: string
  plan: Plan
  /** Token expiry (seconds since the epoch), when the token has one. */
  tokenExp: number | undefined
  /** Set by the socket's first completed sync. */
  mode: SyncMode | undefined
  paused: boolean
  /** What this socket is known to hold, taken when it paused: resume sends what came after. */
  pausedAt: { stateVector: Uint8Array } | { cursor: number } | undefined
  /** A change-log sync has sent a page with `hasMore` and not yet its last page. */
  syncInProgress: boolean
  /** The last error reported to this socket (`CODE: message`), for `sync:status`. */
  lastError: string | null
  /** The device asked for binary packets as single messages (`auth.wire: 'single-frame'`). */
  singleFrame: boolean
}
