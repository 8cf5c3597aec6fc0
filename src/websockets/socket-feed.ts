/**
 * The change feed over Socket.IO (services/change-feed.ts): a write reaches
 * the user's live Yjs sockets as `sync:update` relays (through the relay
 * batcher, once per turn; `relay` before the commit, or with `publish`
 * after it), and once committed the user's live JSON sockets as
 * `sync:entity_*` change records, and every socket of the user as
 * `sync:conflict`. The connection that made the write gets neither its own
 * update nor its own change records back.
 *
 * `SocketConnections` gives the operators the user's devices and a way to
 * close them.
 */
import type { ChangeFeed, CommittedWrite } from '../services/change-feed.js'
import type { DeviceConnections } from '../services/operators/operator.service.js'
import type { SyncChange } from '../types/sync.js'
import { SyncEventType, SyncOperationType } from '../types/sync.js'
import type { RelayBatcher } from './relay-batcher.js'
import type { SyncServer } from './types.js'
import { liveChangesRoom, userRoom } from './types.js'

const entityEvents = {
  [SyncOperationType.CREATE]: SyncEventType.ENTITY_CREATED,
  [SyncOperationType.UPDATE]: SyncEventType.ENTITY_UPDATED,
  [SyncOperationType.DELETE]: SyncEventType.ENTITY_DELETED,
} as const

/** Sends one change record to the user's live JSON sockets, except `exceptSocketId`. */
export function emitEntityChange(io: SyncServer, change: SyncChange, exceptSocketId?: string): void {
  // Local: a user's sockets are all on this node (in a cluster, its owner).
  const target = io.local.to(liveChangesRoom(change.userId))
  ;(exceptSocketId ? target.except(exceptSocketId) : target).emit(entityEvents[change.operationType], change)
}

export class SocketFeed implements ChangeFeed {
  constructor(
    private readonly io: SyncServer,
    private readonly relays: RelayBatcher,
  ) {}

  wantsChanges(userId: string, origin: string | undefined): boolean {
    const room = this.io.sockets.adapter.rooms.get(liveChangesRoom(userId))
    return (room?.size ?? 0) - (origin !== undefined && room?.has(origin) ? 1 : 0) > 0
  }

  relay(write: Pick<CommittedWrite, 'userId' | 'origin' | 'serverTimestamp' | 'updates'>): void {
    const { userId, origin, serverTimestamp } = write
    for (const u of write.updates) this.relays.relay(userId, u.fromOrigin ? origin : undefined, u.deviceId, u.update, serverTimestamp)
  }

  publish(write: CommittedWrite): void {
    const { userId, origin } = write
    this.relay(write)
    for (const change of write.changes) emitEntityChange(this.io, change, origin)
    if (write.conflicts.length === 0) return
    // After the updates they are about (a resolution's value, a write-back): the user's relays go first.
    this.relays.flushUser(userId)
    for (const conflict of write.conflicts) this.io.local.to(userRoom(userId)).emit(SyncEventType.SYNC_CONFLICT, conflict)
  }
}

/**
 * The user's sockets as the operators see them (services/operators: devices,
 * disconnect, revoke, erase), wherever they are: in a cluster the adapter
 * asks every node (`fetchSockets`), so an admin request on any node sees and
 * closes the sockets on the owner.
 */
export class SocketConnections implements DeviceConnections {
  constructor(private readonly io: SyncServer) {}

  async connectedDevices(userId: string): Promise<Map<string, number>> {
    const devices = new Map<string, number>()
    for (const socket of await this.io.in(userRoom(userId)).fetchSockets()) {
      devices.set(socket.data.deviceId, (devices.get(socket.data.deviceId) ?? 0) + 1)
    }
    return devices
  }

  async disconnect(userId: string, deviceId?: string): Promise<void> {
    const room = this.io.in(userRoom(userId))
    if (deviceId === undefined) return room.disconnectSockets(true)
    for (const socket of await room.fetchSockets()) if (socket.data.deviceId === deviceId) socket.disconnect(true)
  }
}
