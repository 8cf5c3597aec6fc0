/**
 * Plan limits (issue 4, item 3; protocol §7), declared once. The plan
 * comes from the token (`plan` claim, `free` when absent). The README's
 * "Plans" table mirrors this one. Server-wide limits that do not depend on
 * the plan (connections per IP, strikes before a disconnect) are in
 * `models/server-limits.ts`.
 *
 * What each limit counts:
 * - `entitiesPerType`: live (not soft-deleted) entities of one type. A write
 *   that would create entities beyond it is refused whole with
 *   `QUOTA_EXCEEDED`: a JSON `create` of a new (or deleted) entity counts one;
 *   a Yjs update counts the new entity maps it puts into a top-level
 *   collection, read from its decoded structs before anything is applied.
 * - `documentBytes`: the stored size of the user's document, estimated as the
 *   bytes of its update log (the last compacted snapshot, which is the
 *   encoded state, plus the updates appended since; compaction keeps the
 *   estimate within `COMPACT_MAX_BYTES` of the encoded state size). A write
 *   whose update would take it past the limit is `QUOTA_EXCEEDED`.
 * - `updateBytes`: one Yjs update, or one change record's `data` as JSON
 *   (UTF-8 bytes). Larger is `PAYLOAD_TOO_LARGE` (bounded above by
 *   `MAX_MESSAGE_BYTES` for the whole message).
 * - `devicesPerUser`: distinct `deviceId`s connected at once. A new device
 *   past it is refused at connect; another socket of a connected device is
 *   not a new device.
 * - `connectionsPerUser`: sockets connected at once, whatever their device.
 *
 * - `userEvents` / `socketEvents`: client events per second (any event, reads
 *   too) of all the user's sockets together, and of one socket, as token
 *   buckets (`utils/token-bucket.ts`): up to `burst` at once, then
 *   `perSecond`. One socket cannot use up its user's other devices' share.
 * - `userBytes` / `socketBytes`: the same for the bytes of the events'
 *   payloads (binary updates by length, JSON by its string and key lengths).
 *   Each burst is at least `updateBytes`, so one largest update always fits.
 *   Over any of the four: `RATE_LIMITED` with `retryAfterMs`, nothing of the
 *   event applied (`websockets/event-limiter.ts`).
 * - `newClientIds`: Yjs client ids new to the user's document. Every Y.Doc
 *   instance writes under a new random client id, so honest devices add one
 *   per app session; the document never forgets one, and Yjs does work per
 *   client id on every transaction (a document of 4,000 ids took 1.4 ms to
 *   apply a one-clip update). A token bucket per document: an update whose
 *   new ids it cannot cover is `RATE_LIMITED`, nothing of it applied.
 * - `queuedEvents`: events of the user admitted by the buckets and waiting
 *   for their turn (websockets/fair-scheduler.ts: a user's events run in
 *   slices that yield to other users). More is `RATE_LIMITED`, with the
 *   queue's drain time as `retryAfterMs`.
 *
 * Refusals at connect: `connect_error` with message `quota_exceeded` and data
 * `{ code: 'QUOTA_EXCEEDED', message }`.
 */
import type { Plan } from '../types/events.js'
import type { Rate } from '../utils/token-bucket.js'

export interface PlanLimits {
  entitiesPerType: number
  documentBytes: number
  updateBytes: number
  devicesPerUser: number
  connectionsPerUser: number
  userEvents: Rate
  socketEvents: Rate
  userBytes: Rate
  socketBytes: Rate
  newClientIds: Rate
  queuedEvents: number
}

export type PlanTable = Readonly<Record<Plan, Readonly<PlanLimits>>>

const MB = 1 << 20

export const PLANS: PlanTable = {
  free: {
    entitiesPerType: 20_000,
    documentBytes: 64 * MB,
    updateBytes: 8 * MB,
    devicesPerUser: 20,
    connectionsPerUser: 40,
    userEvents: { perSecond: 100, burst: 1000 },
    socketEvents: { perSecond: 50, burst: 500 },
    userBytes: { perSecond: 2 * MB, burst: 16 * MB },
    socketBytes: { perSecond: 1 * MB, burst: 8 * MB },
    newClientIds: { perSecond: 1 / 30, burst: 200 },
    queuedEvents: 500,
  },
  pro: {
    entitiesPerType: 500_000,
    documentBytes: 512 * MB,
    updateBytes: 16 * MB,
    devicesPerUser: 200,
    connectionsPerUser: 400,
    userEvents: { perSecond: 2000, burst: 20_000 },
    socketEvents: { perSecond: 1000, burst: 10_000 },
    userBytes: { perSecond: 16 * MB, burst: 64 * MB },
    socketBytes: { perSecond: 8 * MB, burst: 32 * MB },
    newClientIds: { perSecond: 1 / 10, burst: 500 },
    queuedEvents: 2000,
  },
}
