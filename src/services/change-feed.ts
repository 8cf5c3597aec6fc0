/**
 * What a write tells the user's live devices. The sync service publishes
 * every write to the feed once it is durable, whichever way it came (a socket
 * event, an HTTP request, an operator); the transport that holds the devices'
 * connections implements the feed (`websockets/socket-feed.ts`), so that no
 * caller fans a write out by itself and none can forget to. A device's Yjs
 * update may be relayed earlier, once applied in memory (`relay`): a Yjs
 * device that gets an update the server then fails to store hands it back at
 * its next sync, so only the author's ack must wait for durability.
 */
import type { SyncChange, SyncConflict } from '../types/sync.js'

/** One Yjs update for the user's live Yjs devices. */
export interface FeedUpdate {
  update: Uint8Array
  /** The device it is relayed as (`server` for values the server wrote back). */
  deviceId: string
  /** The origin made it and holds it already: every other Yjs device gets it, the origin does not. */
  fromOrigin: boolean
}

export interface CommittedWrite {
  userId: string
  /** The connection the write came from, if any: it gets no change records of its own write. */
  origin: string | undefined
  serverTimestamp: number
  /** In order; the user's devices apply them in that order. */
  updates: FeedUpdate[]
  /** Change records of the touched entities, for the user's live JSON devices (when the feed wanted them). */
  changes: SyncChange[]
  /** New or resolved conflicts, for every device of the user, after the updates. */
  conflicts: SyncConflict[]
}

export interface ChangeFeed {
  /**
   * Whether a live JSON device other than `origin` would receive change
   * records of `userId`: building them reads every touched entity, work
   * nobody asked for when no such device is connected.
   */
  wantsChanges(userId: string, origin: string | undefined): boolean
  /** Sends a write's Yjs updates to the user's live Yjs devices, before its commit is durable. */
  relay(write: Pick<CommittedWrite, 'userId' | 'origin' | 'serverTimestamp' | 'updates'>): void
  publish(write: CommittedWrite): void
}

/** No devices to tell (services used without a transport: tools, tests). */
export const NO_FEED: ChangeFeed = { wantsChanges: () => false, relay: () => {}, publish: () => {} }
