/**
 * Sync event handlers (PROTOCOL sections 4–7). Thin: each validates its
 * payload, calls a service, replies. The socket's identity and rooms come from
 * `socket.data`, set by the auth middleware from the verified token.
 */
import type { Services } from '../../services/index.js'
import type { SyncDocument } from '../../services/sync-document.js'
import type { SyncChange, SyncStatus } from '../../types/sync.js'
import { SyncEventType, SyncOperationType } from '../../types/sync.js'
import { ErrorCode, SyncError } from '../../utils/errors.js'
import type { Logger } from '../../utils/logger.js'
import { parseControl, parseSyncRequest, parseSyncUpdate } from '../payloads.js'
import type { EventRouter } from '../event-router.js'
import { replyError } from '../reply.js'
import type { SyncServer, SyncSocket } from '../types.js'
import { liveChangesRoom, liveYjsRoom } from '../types.js'

/** What every handler of one socket shares. */
export interface SyncContext {
  socket: SyncSocket
  services: Services
  /** The user's document; settles once it is loaded. Handlers await it before touching it. */
  document: Promise<SyncDocument>
  log: Logger
}

const notYet = (what: string) =>
  new SyncError(ErrorCode.UNAVAILABLE, `${what} is not available on this server version yet`)

/** Attaches every sync listener to a freshly authenticated socket, synchronously. */
export function registerSyncHandlers(socket: SyncSocket, services: Services, router: EventRouter): SyncContext {
  const { userId } = socket.data
  const { log } = router
  const ctx: SyncContext = { socket, services, document: services.sync.openDocument(userId), log }
  ctx.document.catch((err: unknown) => {
    log.error({ err, userId }, 'document load failed; disconnecting the socket')
    replyError(socket, 'connect', undefined, undefined, new SyncError(ErrorCode.UNAVAILABLE, 'document unavailable'), log)
    socket.disconnect(true)
  })
  socket.on('disconnect', () => services.sync.closeDocument(userId))

  router.on(socket, SyncEventType.REQUEST, (p) => handleSyncRequest(ctx, p))
  router.on(socket, SyncEventType.UPDATE, (p) => handleSyncUpdate(ctx, p))
  router.on(socket, SyncEventType.PAUSE, (p) => handleSyncPause(ctx, p))
  router.on(socket, SyncEventType.RESUME, (p) => handleSyncResume(ctx, p))
  router.on(socket, SyncEventType.STATUS, (p) => handleSyncStatusRequest(ctx, p))
  router.on(socket, SyncEventType.ENTITY_CREATED, (p) => handleEntityChange(ctx, SyncOperationType.CREATE, p))
  router.on(socket, SyncEventType.ENTITY_UPDATED, (p) => handleEntityChange(ctx, SyncOperationType.UPDATE, p))
  router.on(socket, SyncEventType.ENTITY_DELETED, (p) => handleEntityChange(ctx, SyncOperationType.DELETE, p))
  router.on(socket, SyncEventType.CONFLICT, (p) => handleConflictResolution(ctx, p))
  return ctx
}

/** `sync:request`: a state-vector sync (section 4) or a change-log sync (section 5). */
export async function handleSyncRequest(ctx: SyncContext, payload: unknown): Promise<Record<string, unknown>> {
  const { socket, services } = ctx
  const request = parseSyncRequest(payload)
  if (request.deviceId !== socket.data.deviceId) {
    throw new SyncError(ErrorCode.FORBIDDEN, 'deviceId is not the one this socket authenticated with')
  }
  if (!request.stateVector) throw notYet('change-log sync (sync:request without stateVector)')
  const doc = await ctx.document
  const diff = services.sync.diff(doc, request.stateVector)
  const { deviceId } = socket.data
  socket.emit(SyncEventType.START, { deviceId, mode: 'yjs' })
  socket.emit(SyncEventType.RESPONSE, { mode: 'yjs', ...diff })
  socket.emit(SyncEventType.COMPLETE, { deviceId, mode: 'yjs', serverTimestamp: diff.serverTimestamp })
  // Joining in the same turn as the diff was taken: no update can fall between the two.
  socket.data.mode = 'yjs'
  if (socket.data.paused) socket.data.pausedAt = diff.stateVector
  else void socket.join(liveYjsRoom(socket.data.userId))
  return { serverTimestamp: diff.serverTimestamp }
}

/** `sync:update`: stored durably, then acknowledged and relayed to the user's other live Yjs sockets. */
export async function handleSyncUpdate(ctx: SyncContext, payload: unknown): Promise<Record<string, unknown>> {
  const { socket, services } = ctx
  const { update } = parseSyncUpdate(payload)
  const doc = await ctx.document
  const committed = await services.sync.submitUpdate(doc, update, socket.id)
  if (committed.stored) {
    socket
      .to(liveYjsRoom(socket.data.userId))
      .emit(SyncEventType.UPDATE, { update, deviceId: socket.data.deviceId, serverTimestamp: committed.serverTimestamp })
  }
  return { serverTimestamp: committed.serverTimestamp }
}

/** `sync:pause`: stop pushing live changes to this socket. */
export async function handleSyncPause(ctx: SyncContext, payload: unknown): Promise<Record<string, unknown>> {
  const { socket, services } = ctx
  parseControl(payload)
  if (socket.data.paused) return {}
  socket.data.paused = true
  if (socket.data.mode === 'yjs') {
    socket.data.pausedAt = services.sync.stateVector(await ctx.document)
    void socket.leave(liveYjsRoom(socket.data.userId))
  }
  return {}
}

/** `sync:resume`: send what the socket missed while paused, then `sync:complete`, then live changes again. */
export async function handleSyncResume(ctx: SyncContext, payload: unknown): Promise<Record<string, unknown>> {
  const { socket, services } = ctx
  parseControl(payload)
  if (!socket.data.paused) return {}
  socket.data.paused = false
  const missedSince = socket.data.pausedAt
  socket.data.pausedAt = undefined
  if (socket.data.mode !== 'yjs' || !missedSince) return {}
  const diff = services.sync.diff(await ctx.document, missedSince)
  const { deviceId } = socket.data
  socket.emit(SyncEventType.RESPONSE, { mode: 'yjs', ...diff })
  socket.emit(SyncEventType.COMPLETE, { deviceId, mode: 'yjs', serverTimestamp: diff.serverTimestamp })
  void socket.join(liveYjsRoom(socket.data.userId))
  return { serverTimestamp: diff.serverTimestamp }
}

/** `sync:entity_created | _updated | _deleted`: change records into the document (issue 3). */
export function handleEntityChange(
  _ctx: SyncContext,
  _operation: SyncOperationType,
  _payload: unknown,
): Promise<Record<string, unknown>> {
  return Promise.reject(notYet('the JSON change API'))
}

/** `sync:conflict`: resolves a recorded conflict (issue 3). */
export function handleConflictResolution(_ctx: SyncContext, _payload: unknown): Promise<Record<string, unknown>> {
  return Promise.reject(notYet('conflict resolution'))
}

/** `sync:status`: emits the device's `SyncStatus` (issue 3). */
export async function handleSyncStatusRequest(ctx: SyncContext, _payload: unknown): Promise<Record<string, unknown>> {
  await getSyncStatus(ctx)
  return {}
}

export function getSyncStatus(_ctx: SyncContext): Promise<SyncStatus> {
  return Promise.reject(notYet('sync:status'))
}

const entityEvents = {
  [SyncOperationType.CREATE]: SyncEventType.ENTITY_CREATED,
  [SyncOperationType.UPDATE]: SyncEventType.ENTITY_UPDATED,
  [SyncOperationType.DELETE]: SyncEventType.ENTITY_DELETED,
} as const

/**
 * Fans one change record out to the user's live JSON sockets, except the one
 * that made it (`exceptSocketId`).
 */
export function broadcastEntityChange(io: SyncServer, change: SyncChange, exceptSocketId?: string): void {
  const target = io.to(liveChangesRoom(change.userId))
  ;(exceptSocketId ? target.except(exceptSocketId) : target).emit(entityEvents[change.operation], change)
}
