/**
 * Live `sync:update` relays to a user's Yjs sockets, gathered per turn of the
 * event loop (issue 5: fewer messages per update). A group commit settles
 * many updates in one turn; each is still acknowledged on its own, but the
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
 */
import * as Y from 'yjs'
import { SyncEventType } from '../types/sync.js'
import type { SyncServer } from './types.js'
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
    // A user's sockets are all on this node (in a cluster, its owner): never through the cluster's adapter.
    const room = this.io.local.to(roomName)
    for (let start = 0; start < relays.length; ) {
      const first = relays[start] as Relay
      const recipients = first.fromSocketId !== undefined && members.has(first.fromSocketId) ? members.size - 1 : members.size
      const maxRun = recipients >= 2 ? MAX_RUN : 1
      let end = start + 1
      while (end < relays.length && end - start < maxRun && sameAuthor(relays[end] as Relay, first)) end++
      const run = relays.slice(start, end)
      start = end
      // Nobody to send to (the author is the user's only live Yjs socket): no message.
      if (recipients === 0) continue
      const last = run[run.length - 1] as Relay
      const update = run.length === 1 ? first.update : Y.mergeUpdates(run.map((r) => r.update))
      const target = first.fromSocketId === undefined ? room : room.except(first.fromSocketId)
      target.emit(SyncEventType.SYNC_UPDATE, { update, deviceId: first.deviceId, serverTimestamp: last.serverTimestamp })
    }
  }
}

const sameAuthor = (a: Relay, b: Relay): boolean => a.fromSocketId === b.fromSocketId && a.deviceId === b.deviceId
