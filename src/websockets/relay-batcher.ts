/**
 * Live `sync:update` relays to a user's Yjs sockets, gathered per turn of the
 * event loop (issue 5: fewer messages per update). Updates are relayed in the
 * turn they are applied (or, for those that wait for durability, the turn
 * their group commit settles); each is still acknowledged on its own, but the
 * updates one socket made within the turn reach each other device as one
 * `sync:update` of that device: `Y.mergeUpdates` of them, in order, with the
 * last `serverTimestamp`. Applying the merged update is the same as applying
 * its parts in turn, and relays keep their order per user (a run is merged
 * only while no other author's relay comes between). Runs are merged only for
 * two or more recipients: for one, the merge costs more than the messages it
 * saves (a turn's frames to a connection leave in one write anyway).
 *
 * With 10 devices of one user each update used to cost 9 relay messages of
 * two WebSocket frames each; now a turn's updates of one device cost 9.
 * Devices that asked for single messages (single-frame.ts) get each relay as
 * one frame, encoded once and written to them one by one; the others get it
 * through the room, as Socket.IO encodes it.
 */
import * as Y from 'yjs'
import { SyncEventType } from '../types/sync.js'
import { encodeEvent, wantsSingleFrame, writeEncoded } from './single-frame.js'
import type { SyncServer, SyncSocket } from './types.js'
import { liveYjsRoom } from './types.js'

/** Updates merged into one relay at most (Y.mergeUpdates grows faster than linearly, yjs#710). */
const MAX_RUN = 64

interface Relay {
  /** The socket that made it (it does not get it back), or none: to every live Yjs socket. */
  fromSocketId: string | undefined
  deviceId: string
  update: Uint8Array
  serverTimestamp: number
}

export class RelayBatcher {
  private pending = new Map<string, Relay[]>()
  private scheduled = false

  constructor(private readonly io: SyncServer) {}

  /** Relays `update` of `deviceId` to the user's live Yjs sockets but `fromSocketId`, at the end of this turn. */
  relay(userId: string, fromSocketId: string | undefined, deviceId: string, update: Uint8Array, serverTimestamp: number): void {
    let relays = this.pending.get(userId)
    if (!relays) this.pending.set(userId, (relays = []))
    relays.push({ fromSocketId, deviceId, update, serverTimestamp })
    if (this.scheduled) return
    this.scheduled = true
    // After the whole microtask queue: every update a commit settled in this turn is in by then.
    process.nextTick(() => this.flush())
  }

  /** Sends the user's pending relays now: before an event to the user's sockets that must come after them. */
  flushUser(userId: string): void {
    const relays = this.pending.get(userId)
    if (!relays) return
    this.pending.delete(userId)
    this.send(userId, relays)
  }

  /** Sends every pending relay now (also before the server closes its connections). */
  flush(): void {
    this.scheduled = false
    const pending = this.pending
    this.pending = new Map()
    for (const [userId, relays] of pending) this.send(userId, relays)
  }

  private send(userId: string, relays: readonly Relay[]): void {
    const roomName = liveYjsRoom(userId)
    const members = this.io.sockets.adapter.rooms.get(roomName)
    if (!members || members.size === 0) return
    const { packed, packedIds } = this.singleFrameMembers(members)
    // A user's sockets are all on this node (in a cluster, its owner): never through the cluster's adapter.
    const room = this.io.local.to(roomName).except(packedIds)
    for (let start = 0; start < relays.length; ) {
      const first = relays[start] as Relay
      const from = first.fromSocketId !== undefined && members.has(first.fromSocketId) ? first.fromSocketId : undefined
      const recipients = from === undefined ? members.size : members.size - 1
      const maxRun = recipients >= 2 ? MAX_RUN : 1
      let end = start + 1
      while (end < relays.length && end - start < maxRun && sameAuthor(relays[end] as Relay, first)) end++
      const run = relays.slice(start, end)
      start = end
      // Nobody to send to (the author is the user's only live Yjs socket): no message.
      if (recipients === 0) continue
      const last = run[run.length - 1] as Relay
      const update = run.length === 1 ? first.update : Y.mergeUpdates(run.map((r) => r.update))
      const payload = { update, deviceId: first.deviceId, serverTimestamp: last.serverTimestamp }
      const packedRecipients = from !== undefined && packedIds.includes(from) ? packed.length - 1 : packed.length
      if (packedRecipients > 0) {
        const encoded = encodeEvent(SyncEventType.SYNC_UPDATE, payload)
        for (const socket of packed) if (socket.id !== from) writeEncoded(socket, encoded)
      }
      if (recipients > packedRecipients) (from === undefined ? room : room.except(from)).emit(SyncEventType.SYNC_UPDATE, payload)
    }
  }

  /** The members that asked for binary packets as single messages: they are written to one by one. */
  private singleFrameMembers(members: ReadonlySet<string>): { packed: SyncSocket[]; packedIds: string[] } {
    const packed: SyncSocket[] = []
    for (const id of members) {
      const socket = this.io.sockets.sockets.get(id)
      if (socket && wantsSingleFrame(socket)) packed.push(socket)
    }
    return { packed, packedIds: packed.map((socket) => socket.id) }
  }
}

const sameAuthor = (a: Relay, b: Relay): boolean => a.fromSocketId === b.fromSocketId && a.deviceId === b.deviceId
