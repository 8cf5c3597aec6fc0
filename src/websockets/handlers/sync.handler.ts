/**
 * Sync event handlers (PROTOCOL sections 4–7). Thin: each validates its
 * payload, calls the sync service, replies, and fans the result out. The
 * socket's identity and rooms come from `socket.data`, set by the auth
 * middleware from the verified token.
 *
 * Rooms of user U: `user:U` (every socket), `yjs:U` (live Yjs sockets: they get
 * `sync:update`), `changes:U` (live JSON sockets: they get `sync:entity_*`).
 * A socket joins its live room in the same turn as its sync's last reply is
 * computed, so no change can fall between the two.
 */
import type { DocumentLease } from '../../services/document-registry.js'
import type { Services } from '../../services/index.js'
import type { SyncDocument } from '../../services/sync-document.js'
import type { Author } from '../../services/yjs-updates.js'
import type { SyncChange, SyncConflict, SyncStatus } from '../../types/sync.js'
import { SyncEventType, SyncOperationType } from '../../types/sync.js'
import { ErrorCode, SyncError } from '../../utils/errors.js'
import type { EventRouter } from '../event-router.js'
import type { RelayBatcher } from '../relay-batcher.js'
import {
  parseConflictResolution,
  parseControl,
  parseEntityChange,
  parseStatusRequest,
  parseSyncRequest,
  parseSyncUpdate,
} from '../payloads.js'
import { replyError } from '../reply.js'
import type { SyncServer, SyncSocket } from '../types.js'
import { liveChangesRoom, liveYjsRoom, userRoom } from '../types.js'

/** What every handler of one socket shares. */
export interface SyncContext {
  socket: SyncSocket
  io: SyncServer
  services: Services
  /** The user's document; settles once it is loaded. Handlers await it before touching it. */
  lease: DocumentLease
  /** Live `sync:update`s to the user's Yjs sockets go out through it, once per turn. */
  relays: RelayBatcher
}

type Result = Record<string, unknown>

/** The change-log page size a resume uses to send what a paused JSON socket missed. */
const RESUME_PAGE = 5000
/** Device id on `sync:update`s the server itself makes (values restored after a conflict). */
const SERVER_DEVICE = 'server'

/** Attaches every sync listener to a freshly authenticated socket, synchronously. */
export function registerSyncHandlers(
  socket: SyncSocket,
  io: SyncServer,
  services: Services,
  router: EventRouter,
  relays: RelayBatcher,
): SyncContext {
  const { userId } = socket.data
  const ctx: SyncContext = { socket, io, services, lease: services.sync.openDocument(userId), relays }
  ctx.lease.document.catch((err: unknown) => {
    router.log.error({ err, userId }, 'document load failed; disconnecting the socket')
    replyError(socket, 'connect', undefined, undefined, new SyncError(ErrorCode.UNAVAILABLE, 'document unavailable'), router.log)
    socket.disconnect(true)
  })
  socket.on('disconnect', () => ctx.lease.release())

  router.on(socket, SyncEventType.SYNC_REQUEST, (p) => handleSyncRequest(ctx, p))
  router.on(socket, SyncEventType.SYNC_UPDATE, (p) => handleSyncUpdate(ctx, p))
  router.on(socket, SyncEventType.SYNC_PAUSE, (p) => handleSyncPause(ctx, p))
  router.on(socket, SyncEventType.SYNC_RESUME, (p) => handleSyncResume(ctx, p))
  router.on(socket, SyncEventType.SYNC_STATUS, (p) => handleSyncStatusRequest(ctx, p))
  router.on(socket, SyncEventType.ENTITY_CREATED, (p) => handleEntityChange(ctx, SyncOperationType.CREATE, p))
  router.on(socket, SyncEventType.ENTITY_UPDATED, (p) => handleEntityChange(ctx, SyncOperationType.UPDATE, p))
  router.on(socket, SyncEventType.ENTITY_DELETED, (p) => handleEntityChange(ctx, SyncOperationType.DELETE, p))
  router.on(socket, SyncEventType.SYNC_CONFLICT, (p) => handleConflictResolution(ctx, p))
  return ctx
}

/** `sync:request`: a state-vector sync (section 4) or a change-log sync (section 5). */
export async function handleSyncRequest(ctx: SyncContext, payload: unknown): Promise<Result> {
  const { socket, services } = ctx
  const request = parseSyncRequest(payload)
  if (request.deviceId !== socket.data.deviceId) {
    throw new SyncError(ErrorCode.FORBIDDEN, 'deviceId is not the one this socket authenticated with')
  }
  const doc = await ctx.lease.document
  const { deviceId } = socket.data
  if (request.stateVector) {
    const diff = services.sync.diff(doc, request.stateVector)
    socket.emit(SyncEventType.SYNC_START, { deviceId, mode: 'yjs' })
    socket.emit(SyncEventType.SYNC_RESPONSE, { mode: 'yjs', ...diff })
    socket.emit(SyncEventType.SYNC_COMPLETE, { deviceId, mode: 'yjs', serverTimestamp: diff.serverTimestamp })
    goLive(ctx, doc, 'yjs', { stateVector: diff.stateVector }, diff.serverTimestamp)
    return { serverTimestamp: diff.serverTimestamp }
  }
  const page = await services.sync.changePage(doc, socket.data.userId, request)
  socket.emit(SyncEventType.SYNC_START, { deviceId, mode: 'changes' })
  socket.emit(SyncEventType.SYNC_RESPONSE, { mode: 'changes', ...page })
  socket.data.syncInProgress = page.hasMore
  if (!page.hasMore) {
    socket.emit(SyncEventType.SYNC_COMPLETE, { deviceId, mode: 'changes', cursor: page.cursor, serverTimestamp: page.serverTimestamp })
    // The device's lastSyncTimestamp is the sync's serverTimestamp (PROTOCOL section 7); the last page
    // carried every entity change up to it, so it is as good a resume point as the cursor.
    goLive(ctx, doc, 'changes', { cursor: page.cursor }, page.serverTimestamp)
  }
  return { hasMore: page.hasMore, cursor: page.cursor, serverTimestamp: page.serverTimestamp }
}

/** After a completed sync: record it, and push live changes to the socket unless it is paused. */
function goLive(
  ctx: SyncContext,
  doc: SyncDocument,
  mode: 'yjs' | 'changes',
  holds: NonNullable<SyncSocket['data']['pausedAt']>,
  lastSyncTimestamp: number,
): void {
  const { socket, services } = ctx
  const { userId, deviceId } = socket.data
  void socket.leave(mode === 'yjs' ? liveChangesRoom(userId) : liveYjsRoom(userId))
  socket.data.mode = mode
  if (socket.data.paused) socket.data.pausedAt = holds
  else void socket.join(mode === 'yjs' ? liveYjsRoom(userId) : liveChangesRoom(userId))
  const stateVector = 'stateVector' in holds ? { stateVector: Buffer.from(holds.stateVector).toString('base64') } : {}
  services.sync.completeSync(doc, { deviceId, mode, lastSyncTimestamp, ...stateVector })
}

const author = (socket: SyncSocket): Author => ({ userId: socket.data.userId, deviceId: socket.data.deviceId })

/** Whether a live JSON socket of the user other than this one would receive change records. */
function jsonListeners(ctx: SyncContext): boolean {
  const room = ctx.io.sockets.adapter.rooms.get(liveChangesRoom(ctx.socket.data.userId))
  return (room?.size ?? 0) - (room?.has(ctx.socket.id) ? 1 : 0) > 0
}

/** `sync:update`: applied, stored durably, acknowledged, and relayed to the user's other sockets. */
export async function handleSyncUpdate(ctx: SyncContext, payload: unknown): Promise<Result> {
  const { socket, services, io } = ctx
  const { update } = parseSyncUpdate(payload)
  const doc = await ctx.lease.document
  const applied = await services.sync.applyUpdate(doc, update, author(socket), jsonListeners(ctx), socket.data.plan)
  if (applied.stored) {
    const { userId, deviceId } = socket.data
    const { serverTimestamp } = applied
    ctx.relays.relay(userId, socket.id, deviceId, update, serverTimestamp)
    for (const fixup of applied.fixups) ctx.relays.relay(userId, undefined, SERVER_DEVICE, fixup, serverTimestamp)
    for (const change of applied.changes) broadcastEntityChange(io, change)
    emitConflicts(ctx, applied.conflicts)
  }
  return { serverTimestamp: applied.serverTimestamp }
}

/** `sync:entity_created | _updated | _deleted`: one change record into the document. */
export async function handleEntityChange(ctx: SyncContext, operation: SyncOperationType, payload: unknown): Promise<Result> {
  const { socket, services } = ctx
  const { requestId: _requestId, ...change } = parseEntityChange(payload, operation, socket.data.userId)
  const doc = await ctx.lease.document
  const applied = await services.sync.applyChange(doc, change, author(socket), jsonListeners(ctx), socket.data.plan)
  if (!applied.duplicate) fanOut(ctx, applied.update, applied.result.serverTimestamp, applied.changes, applied.conflicts)
  return { ...applied.result }
}

/** `sync:conflict`: resolves a recorded conflict by `server`, `client` or `merged` data. */
export async function handleConflictResolution(ctx: SyncContext, payload: unknown): Promise<Result> {
  const { socket, services } = ctx
  const resolution = parseConflictResolution(payload)
  const doc = await ctx.lease.document
  const resolved = await services.sync.resolveConflict(doc, resolution, author(socket), jsonListeners(ctx), socket.data.plan)
  const { serverTimestamp } = resolved
  fanOut(ctx, resolved.update, serverTimestamp, resolved.changes, [resolved.conflict])
  return { conflictId: resolved.conflict.id, entityId: resolved.conflict.entityId, version: resolved.version, serverTimestamp }
}

/**
 * Tells the user's other devices about a change this socket made on the JSON
 * path: its Yjs update to every live Yjs socket, its change records to the
 * other live JSON sockets, and its conflicts to every socket.
 */
function fanOut(
  ctx: SyncContext,
  update: Uint8Array | undefined,
  serverTimestamp: number,
  changes: readonly SyncChange[],
  conflicts: readonly SyncConflict[],
): void {
  const { socket, io } = ctx
  const { userId, deviceId } = socket.data
  // To every live Yjs socket, this one too: the value was written by the server (a Yjs socket resolving a conflict lacks it).
  if (update) ctx.relays.relay(userId, undefined, deviceId, update, serverTimestamp)
  for (const c of changes) broadcastEntityChange(io, c, socket.id)
  emitConflicts(ctx, conflicts)
}

/** `sync:pause`: stop pushing live changes to this socket. */
export async function handleSyncPause(ctx: SyncContext, payload: unknown): Promise<Result> {
  const { socket } = ctx
  parseControl(payload)
  if (socket.data.paused) return {}
  socket.data.paused = true
  const { userId, mode } = socket.data
  if (mode === undefined) return {}
  const doc = await ctx.lease.document
  // What this socket has been sent, not the memory: changes being written are relayed to the room it
  // leaves now, so resume must send them.
  const { stateVector, clock } = doc.published
  if (mode === 'yjs') {
    socket.data.pausedAt = { stateVector }
    void socket.leave(liveYjsRoom(userId))
  } else {
    socket.data.pausedAt = { cursor: clock }
    void socket.leave(liveChangesRoom(userId))
  }
  return {}
}

/** `sync:resume`: send what the socket missed while paused, then `sync:complete`, then live changes again. */
export async function handleSyncResume(ctx: SyncContext, payload: unknown): Promise<Result> {
  const { socket, services } = ctx
  parseControl(payload)
  if (!socket.data.paused) return {}
  const missedSince = socket.data.pausedAt
  if (!missedSince) {
    socket.data.paused = false
    return {}
  }
  const doc = await ctx.lease.document
  const { deviceId, userId } = socket.data
  // Live again from the last reply below, in the same turn (goLive joins the live room).
  socket.data.paused = false
  socket.data.pausedAt = undefined
  if ('stateVector' in missedSince) {
    const diff = services.sync.diff(doc, missedSince.stateVector)
    socket.emit(SyncEventType.SYNC_RESPONSE, { mode: 'yjs', ...diff })
    socket.emit(SyncEventType.SYNC_COMPLETE, { deviceId, mode: 'yjs', serverTimestamp: diff.serverTimestamp })
    goLive(ctx, doc, 'yjs', { stateVector: diff.stateVector }, diff.serverTimestamp)
    return { serverTimestamp: diff.serverTimestamp }
  }
  let cursor = missedSince.cursor
  for (;;) {
    const page = await services.sync.changePage(doc, userId, { lastSyncTimestamp: cursor, limit: RESUME_PAGE })
    socket.emit(SyncEventType.SYNC_RESPONSE, { mode: 'changes', ...page })
    cursor = page.cursor
    if (!page.hasMore) {
      socket.emit(SyncEventType.SYNC_COMPLETE, { deviceId, mode: 'changes', cursor, serverTimestamp: page.serverTimestamp })
      goLive(ctx, doc, 'changes', { cursor }, page.serverTimestamp)
      return { cursor, serverTimestamp: page.serverTimestamp }
    }
  }
}

/** `sync:status`: emits the device's `SyncStatus`, its open conflicts and its plan. */
export async function handleSyncStatusRequest(ctx: SyncContext, payload: unknown): Promise<Result> {
  const { socket } = ctx
  parseStatusRequest(payload)
  const status = await getSyncStatus(ctx)
  socket.emit(SyncEventType.SYNC_STATUS, { ...status, plan: socket.data.plan })
  return {}
}

export async function getSyncStatus(ctx: SyncContext): Promise<SyncStatus & { conflicts: string[] }> {
  const { socket, services } = ctx
  const doc = await ctx.lease.document
  const { userId, deviceId, mode, paused, syncInProgress, lastError } = socket.data
  return services.sync.status(doc, userId, deviceId, {
    live: mode !== undefined && !paused,
    inProgress: syncInProgress,
    lastError,
  })
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
  ;(exceptSocketId ? target.except(exceptSocketId) : target).emit(entityEvents[change.operationType], change)
}

/** Every socket of the user hears of new and resolved conflicts. */
function emitConflicts(ctx: SyncContext, conflicts: readonly SyncConflict[]): void {
  if (conflicts.length === 0) return
  // After the updates they are about (a resolution's value, a write-back): the user's relays go first.
  ctx.relays.flushUser(ctx.socket.data.userId)
  for (const c of conflicts) ctx.io.to(userRoom(c.userId)).emit(SyncEventType.SYNC_CONFLICT, c)
}
