/**
 * Sync event handlers (protocol §§4–7), with the seed's names and
 * signatures (`sync.handler.spec.md`): other code calls them as the seed's
 * usage lines show, e.g.
 *
 *   socket.on(SyncEventType.SYNC_REQUEST, request => handleSyncRequest(io, socket, request))
 *
 * Thin: each validates its payload, calls the sync service and replies. Every
 * event, whether `registerSyncHandlers` attached it or other code calls a
 * handler itself, runs through the event router's one pipeline (token expiry,
 * rate limits, the handler, then the ack or the error reply and `sync:error`);
 * called directly, a handler has no ack to answer, so its errors reach the
 * client as `sync:error` only, and its promise never rejects. The services
 * are reached through the runtime attached to the server (`sync-runtime.ts`).
 * Committed writes reach the user's other devices through the change feed
 * (`socket-feed.ts`), not from here.
 *
 * Rooms of user U: `user:U` (every socket), `yjs:U` (live Yjs sockets: they get
 * `sync:update`), `changes:U` (live JSON sockets: they get `sync:entity_*`).
 * A socket joins its live room in the same turn as its sync's last reply is
 * computed, so no change can fall between the two.
 */
import type { SyncDocument } from '../../services/sync-document.js'
import type { Author } from '../../services/yjs-updates.js'
import type { ClientToServerEvents } from '../../types/events.js'
import type { SyncChange, SyncRequest, SyncStatus } from '../../types/sync.js'
import { SyncEventType, SyncOperationType } from '../../types/sync.js'
import { ErrorCode, SyncError } from '../../utils/errors.js'
import { secondsSince } from '../../utils/metrics.js'
import type { AuthenticatedSocket } from '../middleware/auth.middleware.js'
import {
  DEVICE_ID,
  parseConflictResolution,
  parseControl,
  parseEntityChange,
  parseStatusRequest,
  parseSyncRequest,
  parseSyncUpdate,
} from '../payloads.js'
import { emitEntityChange } from '../socket-feed.js'
import { runtimeOf, serverOf } from '../sync-runtime.js'
import type { SyncServer, SyncSocket } from '../types.js'
import { emitBinary } from '../single-frame.js'
import { liveChangesRoom, liveYjsRoom } from '../types.js'

type Result = Record<string, unknown>
type ClientEvent = keyof ClientToServerEvents
/** The work of one event, given its raw payload; what it returns is acknowledged. */
type Handling = (io: SyncServer, socket: SyncSocket, payload: unknown) => Promise<Result>

/** The change-log page size a resume uses to send what a paused JSON socket missed. */
const RESUME_PAGE = 5000

/** Attaches every sync listener to a freshly authenticated socket, synchronously, and starts loading its document. */
export function registerSyncHandlers(io: SyncServer, socket: AuthenticatedSocket): void {
  const { router } = runtimeOf(io)
  void runtimeOf(io).document(socket)
  for (const [event, handling] of Object.entries(HANDLINGS) as [ClientEvent, Handling][]) {
    router.on(socket, event, (payload) => handling(io, socket, payload))
  }
}

/** One event through the router's pipeline, with no ack: the seed's handlers as other code calls them. */
function dispatch(io: SyncServer, socket: SyncSocket, event: ClientEvent, payload: unknown): Promise<void> {
  return runtimeOf(io).router.run(socket, event, payload, undefined, (p) => HANDLINGS[event](io, socket, p))
}

/** `sync:request`: a state-vector sync (section 4) or a change-log sync (section 5). */
export function handleSyncRequest(io: SyncServer, socket: AuthenticatedSocket, request: SyncRequest): Promise<void> {
  return dispatch(io, socket, SyncEventType.SYNC_REQUEST, request)
}

/** `sync:entity_updated`: one change record into the document. */
export function handleEntityUpdated(io: SyncServer, socket: AuthenticatedSocket, change: SyncChange): Promise<void> {
  return dispatch(io, socket, SyncEventType.ENTITY_UPDATED, change)
}

/** `sync:entity_created`: a new entity (or a soft-deleted one revived). */
export function handleEntityCreated(io: SyncServer, socket: AuthenticatedSocket, change: SyncChange): Promise<void> {
  return dispatch(io, socket, SyncEventType.ENTITY_CREATED, change)
}

/** `sync:entity_deleted`: a soft delete (`_deleted`, `deletedAt`). */
export function handleEntityDeleted(io: SyncServer, socket: AuthenticatedSocket, change: SyncChange): Promise<void> {
  return dispatch(io, socket, SyncEventType.ENTITY_DELETED, change)
}

/** `sync:conflict`: resolves a recorded conflict by `server`, `client` or `merged` data. */
export function handleSyncConflictResolution(
  socket: AuthenticatedSocket,
  resolution: { conflictId: string; winningVersion: 'server' | 'client' | 'merged'; mergedData?: any }, // eslint-disable-line @typescript-eslint/no-explicit-any -- the seed's signature
): Promise<void> {
  return dispatch(serverOf(socket), socket, SyncEventType.SYNC_CONFLICT, resolution)
}

/** `sync:status`: emits the device's `SyncStatus`, its user's open conflicts and the socket's plan. */
export function handleSyncStatusRequest(socket: AuthenticatedSocket, deviceId: string): Promise<void> {
  return dispatch(serverOf(socket), socket, SyncEventType.SYNC_STATUS, deviceId)
}

/** `sync:update` (not in the seed): a Yjs update, applied, stored durably and acknowledged. */
export function handleSyncUpdate(io: SyncServer, socket: AuthenticatedSocket, payload: { update: Uint8Array; requestId?: string }): Promise<void> {
  return dispatch(io, socket, SyncEventType.SYNC_UPDATE, payload)
}

/** `sync:pause` (no seed signature): stop pushing live changes to this socket. */
export function handleSyncPause(io: SyncServer, socket: AuthenticatedSocket): Promise<void> {
  return dispatch(io, socket, SyncEventType.SYNC_PAUSE, undefined)
}

/** `sync:resume` (no seed signature): send what the socket missed, then live changes again. */
export function handleSyncResume(io: SyncServer, socket: AuthenticatedSocket): Promise<void> {
  return dispatch(io, socket, SyncEventType.SYNC_RESUME, undefined)
}

/**
 * The sync status of `deviceId`, a device of the socket's user. For the
 * socket's own device it includes the socket's state (`inProgress`,
 * `lastError`, and no pending changes while it is live); for another device,
 * what is stored of it.
 */
export async function getSyncStatus(socket: AuthenticatedSocket, deviceId: string): Promise<SyncStatus> {
  return (await statusOf(serverOf(socket), socket, deviceId)).status
}

async function statusOf(io: SyncServer, socket: SyncSocket, deviceId: string) {
  if (typeof deviceId !== 'string' || !DEVICE_ID.test(deviceId)) {
    throw new SyncError(ErrorCode.INVALID_PAYLOAD, 'deviceId must be 1-128 characters of [A-Za-z0-9._:-]')
  }
  const runtime = runtimeOf(io)
  const doc = runtime.loaded(socket) ?? (await runtime.document(socket))
  const { userId, mode, paused, syncInProgress, lastError } = socket.data
  const own = deviceId === socket.data.deviceId
  const state = own
    ? { live: mode !== undefined && !paused, inProgress: syncInProgress, lastError }
    : { live: false, inProgress: false, lastError: null }
  const { conflicts, ...status } = await runtime.services.sync.status(doc, userId, deviceId, state)
  return { status, conflicts }
}

/**
 * Sends one change record to the user's live JSON sockets (the change's
 * `userId`), except the socket `excludeSocket`. Committed writes are
 * broadcast by the change feed; this is for other code with a record to send.
 */
export function broadcastEntityChange(io: SyncServer, change: SyncChange, excludeSocket?: string): Promise<void> {
  emitEntityChange(io, change, excludeSocket)
  return Promise.resolve()
}

const author = (socket: SyncSocket): Author => ({ userId: socket.data.userId, deviceId: socket.data.deviceId, origin: socket.id })

async function syncRequest(io: SyncServer, socket: SyncSocket, payload: unknown): Promise<Result> {
  const started = performance.now() // answered requests are timed by mode (utils/metrics.ts)
  const { services, router } = runtimeOf(io)
  const request = parseSyncRequest(payload)
  if (request.deviceId !== socket.data.deviceId) {
    throw new SyncError(ErrorCode.FORBIDDEN, 'deviceId is not the one this socket authenticated with')
  }
  const doc = runtimeOf(io).loaded(socket) ?? (await runtimeOf(io).document(socket))
  const { deviceId } = socket.data
  if (request.stateVector) {
    const diff = await services.sync.diff(doc, socket.data.userId, request.stateVector)
    socket.emit(SyncEventType.SYNC_START, { deviceId, mode: 'yjs' })
    emitBinary(socket, SyncEventType.SYNC_RESPONSE, { mode: 'yjs', ...diff })
    socket.emit(SyncEventType.SYNC_COMPLETE, { deviceId, mode: 'yjs', serverTimestamp: diff.serverTimestamp })
    goLive(io, socket, doc, { stateVector: diff.stateVector }, diff.serverTimestamp)
    router.metrics.syncSeconds.observe({ mode: 'yjs' }, secondsSince(started))
    return { serverTimestamp: diff.serverTimestamp }
  }
  const page = await services.sync.changePage(doc, socket.data.userId, request)
  socket.emit(SyncEventType.SYNC_START, { deviceId, mode: 'changes' })
  socket.emit(SyncEventType.SYNC_RESPONSE, { mode: 'changes', ...page })
  socket.data.syncInProgress = page.hasMore
  if (!page.hasMore) {
    socket.emit(SyncEventType.SYNC_COMPLETE, { deviceId, mode: 'changes', cursor: page.cursor, serverTimestamp: page.serverTimestamp })
    // The device's lastSyncTimestamp is the sync's serverTimestamp (protocol §7); the last page
    // carried every entity change up to it, so it is as good a resume point as the cursor.
    goLive(io, socket, doc, { cursor: page.cursor }, page.serverTimestamp)
  }
  router.metrics.syncSeconds.observe({ mode: 'changes' }, secondsSince(started))
  return { hasMore: page.hasMore, cursor: page.cursor, serverTimestamp: page.serverTimestamp }
}

/** After a completed sync: record it, and push live changes to the socket unless it is paused. */
function goLive(
  io: SyncServer,
  socket: SyncSocket,
  doc: SyncDocument,
  holds: NonNullable<SyncSocket['data']['pausedAt']>,
  lastSyncTimestamp: number,
): void {
  const { userId, deviceId } = socket.data
  const mode = 'stateVector' in holds ? 'yjs' : 'changes'
  void socket.leave(mode === 'yjs' ? liveChangesRoom(userId) : liveYjsRoom(userId))
  socket.data.mode = mode
  if (socket.data.paused) socket.data.pausedAt = holds
  else void socket.join(mode === 'yjs' ? liveYjsRoom(userId) : liveChangesRoom(userId))
  const stateVector = 'stateVector' in holds ? { stateVector: Buffer.from(holds.stateVector).toString('base64') } : {}
  runtimeOf(io).services.sync.completeSync(doc, { deviceId, mode, lastSyncTimestamp, ...stateVector })
}

async function syncUpdate(io: SyncServer, socket: SyncSocket, payload: unknown): Promise<Result> {
  const { update } = parseSyncUpdate(payload)
  const runtime = runtimeOf(io)
  const doc = runtime.loaded(socket) ?? (await runtime.document(socket))
  // Returned, not awaited: with the document loaded, no frame of this waits through the commit (as in applyUpdate).
  return runtime.services.sync.applyUpdate(doc, update, author(socket), socket.data.plan).then((applied) => ({ serverTimestamp: applied.serverTimestamp }))
}

async function entityChange(io: SyncServer, socket: SyncSocket, operation: SyncOperationType, payload: unknown): Promise<Result> {
  const { requestId: _requestId, ...change } = parseEntityChange(payload, operation, socket.data.userId)
  const runtime = runtimeOf(io)
  const doc = runtime.loaded(socket) ?? (await runtime.document(socket))
  const applied = await runtime.services.sync.applyChange(doc, change, author(socket), socket.data.plan)
  return { ...applied.result }
}

async function conflictResolution(io: SyncServer, socket: SyncSocket, payload: unknown): Promise<Result> {
  const resolution = parseConflictResolution(payload)
  const runtime = runtimeOf(io)
  const doc = runtime.loaded(socket) ?? (await runtime.document(socket))
  const resolved = await runtime.services.sync.resolveConflict(doc, resolution, author(socket), socket.data.plan)
  const { conflict, version, serverTimestamp } = resolved
  return { conflictId: conflict.id, entityId: conflict.entityId, version, serverTimestamp }
}

async function syncPause(io: SyncServer, socket: SyncSocket, payload: unknown): Promise<Result> {
  parseControl(payload)
  if (socket.data.paused) return {}
  socket.data.paused = true
  const { userId, mode } = socket.data
  if (mode === undefined) return {}
  const doc = runtimeOf(io).loaded(socket) ?? (await runtimeOf(io).document(socket))
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

async function syncResume(io: SyncServer, socket: SyncSocket, payload: unknown): Promise<Result> {
  parseControl(payload)
  if (!socket.data.paused) return {}
  const missedSince = socket.data.pausedAt
  if (!missedSince) {
    socket.data.paused = false
    return {}
  }
  const { services } = runtimeOf(io)
  const doc = runtimeOf(io).loaded(socket) ?? (await runtimeOf(io).document(socket))
  const { deviceId, userId } = socket.data
  // Live again from the last reply below (goLive joins the live room). Before the diff's wait: a pause
  // that comes meanwhile is a pause of a live socket, which goLive then keeps.
  socket.data.paused = false
  socket.data.pausedAt = undefined
  if ('stateVector' in missedSince) {
    const diff = await services.sync.diff(doc, userId, missedSince.stateVector).catch((err: unknown) => {
      // Refused (to retry): still paused where it was, unless it paused again meanwhile.
      if (!socket.data.paused) {
        socket.data.paused = true
        socket.data.pausedAt = missedSince
      }
      throw err
    })
    emitBinary(socket, SyncEventType.SYNC_RESPONSE, { mode: 'yjs', ...diff })
    socket.emit(SyncEventType.SYNC_COMPLETE, { deviceId, mode: 'yjs', serverTimestamp: diff.serverTimestamp })
    goLive(io, socket, doc, { stateVector: diff.stateVector }, diff.serverTimestamp)
    return { serverTimestamp: diff.serverTimestamp }
  }
  let cursor = missedSince.cursor
  for (;;) {
    const page = await services.sync.changePage(doc, userId, { lastSyncTimestamp: cursor, limit: RESUME_PAGE })
    socket.emit(SyncEventType.SYNC_RESPONSE, { mode: 'changes', ...page })
    cursor = page.cursor
    if (!page.hasMore) {
      socket.emit(SyncEventType.SYNC_COMPLETE, { deviceId, mode: 'changes', cursor, serverTimestamp: page.serverTimestamp })
      goLive(io, socket, doc, { cursor }, page.serverTimestamp)
      return { cursor, serverTimestamp: page.serverTimestamp }
    }
  }
}

async function syncStatus(io: SyncServer, socket: SyncSocket, payload: unknown): Promise<Result> {
  const { deviceId } = parseStatusRequest(payload)
  const { status, conflicts } = await statusOf(io, socket, deviceId)
  socket.emit(SyncEventType.SYNC_STATUS, { ...status, conflicts, plan: socket.data.plan })
  return {}
}

/** `sync:conflicts` (not in the seed): the user's open conflicts, whole, in the ack. */
async function syncConflicts(io: SyncServer, socket: SyncSocket, payload: unknown): Promise<Result> {
  parseControl(payload)
  const { services } = runtimeOf(io)
  return { conflicts: services.sync.openConflicts(runtimeOf(io).loaded(socket) ?? (await runtimeOf(io).document(socket))) }
}

/** The work behind each client event. */
const HANDLINGS: Record<ClientEvent, Handling> = {
  [SyncEventType.SYNC_REQUEST]: syncRequest,
  [SyncEventType.SYNC_UPDATE]: syncUpdate,
  [SyncEventType.SYNC_PAUSE]: syncPause,
  [SyncEventType.SYNC_RESUME]: syncResume,
  [SyncEventType.SYNC_STATUS]: syncStatus,
  [SyncEventType.ENTITY_CREATED]: (io, socket, p) => entityChange(io, socket, SyncOperationType.CREATE, p),
  [SyncEventType.ENTITY_UPDATED]: (io, socket, p) => entityChange(io, socket, SyncOperationType.UPDATE, p),
  [SyncEventType.ENTITY_DELETED]: (io, socket, p) => entityChange(io, socket, SyncOperationType.DELETE, p),
  [SyncEventType.SYNC_CONFLICT]: conflictResolution,
  [SyncEventType.SYNC_CONFLICTS]: syncConflicts,
}
