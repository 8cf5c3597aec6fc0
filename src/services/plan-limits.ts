/**
 * The checks of plan limits (`models/plans.ts`) on writes, made before
 * anything of the write is applied or stored: a refused write changes nothing.
 */
import * as Y from 'yjs'
import { specOfCollection } from '../models/entity-schema.js'
import type { PlanLimits } from '../models/plans.js'
import type { SyncEntityType } from '../types/sync.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import { jittered } from '../utils/retry.js'
import { TokenBucket } from '../utils/token-bucket.js'
import type { SyncDocument } from './sync-document.js'
import type { DecodedUpdate } from './update-validator.js'

/** One Yjs update or one change record's data larger than the plan allows: `PAYLOAD_TOO_LARGE`. */
export function checkUpdateBytes(bytes: number, limits: PlanLimits, what: string): void {
  if (bytes > limits.updateBytes) {
    throw new SyncError(ErrorCode.PAYLOAD_TOO_LARGE, `${what} is ${bytes} bytes; the plan allows ${limits.updateBytes}`)
  }
}

/** Writing about `bytes` more would take the document past the plan's size: `QUOTA_EXCEEDED`. */
export function checkDocumentBytes(sync: SyncDocument, bytes: number, limits: PlanLimits): void {
  if (sync.logBytes + bytes > limits.documentBytes) {
    throw new SyncError(
      ErrorCode.QUOTA_EXCEEDED,
      `the document would exceed the plan's ${limits.documentBytes} bytes (it holds about ${sync.logBytes})`,
    )
  }
}

/**
 * A value a JSON write stores (a change's data, a resolved conflict's value):
 * its JSON size stands for the update it becomes, against both byte limits.
 */
export function checkJsonBytes(sync: SyncDocument, value: unknown, limits: PlanLimits, what: string): void {
  const bytes = Buffer.byteLength(JSON.stringify(value) ?? 'null')
  checkUpdateBytes(bytes, limits, what)
  checkDocumentBytes(sync, bytes, limits)
}

/** Creating `created` more live entities per type would pass the plan's limit: `QUOTA_EXCEEDED`. */
export function checkNewEntities(sync: SyncDocument, created: ReadonlyMap<SyncEntityType, number>, limits: PlanLimits): void {
  for (const [type, count] of created) {
    const live = sync.liveCount(type)
    if (live + count > limits.entitiesPerType) {
      throw new SyncError(
        ErrorCode.QUOTA_EXCEEDED,
        `the plan allows ${limits.entitiesPerType} live ${type} entities; there are ${live} and this would add ${count}`,
      )
    }
  }
}

/**
 * Takes the update's new Yjs client ids from the document's bucket, or
 * refuses the update with `RATE_LIMITED` (`PlanLimits.newClientIds`).
 */
export function checkNewClientIds(sync: SyncDocument, decoded: DecodedUpdate, limits: PlanLimits, now = Date.now()): void {
  const known = sync.doc.store.clients
  // Most updates come from a client id the document holds: the set is made for the first new one.
  let clients: Set<number> | undefined
  for (const s of decoded.structs) if (!known.has(s.id.client)) (clients ??= new Set()).add(s.id.client)
  if (!clients) return
  sync.newClientIds ??= new TokenBucket(limits.newClientIds, now)
  const wait = sync.newClientIds.tryTake(clients.size, now)
  if (wait > 0) {
    throw new SyncError(ErrorCode.RATE_LIMITED, `too many new Yjs client ids for this document (a new Y.Doc per update?)`, {
      retryAfterMs: jittered(Math.min(wait, 60_000)),
    })
  }
}

/**
 * The entities a decoded update would create, per type: the distinct new keys
 * it writes into a top-level collection map. A key's first write in an update
 * names its parent collection (it has no origin); later writes of the same
 * key follow it. Keys the collection already holds are not new (replacing
 * one is refused by the inspector).
 */
export function newEntitiesInUpdate(doc: Y.Doc, decoded: DecodedUpdate): Map<SyncEntityType, number> {
  const counts = new Map<SyncEntityType, number>()
  // The new keys counted so far (collection/key), made once an update writes a second one (rare).
  let seen: Set<string> | undefined
  let first: string | undefined
  for (const s of decoded.structs) {
    if (!(s instanceof Y.Item) || typeof s.parent !== 'string' || s.parentSub === null) continue
    if (s.id.clock < Y.getState(doc.store, s.id.client)) continue // already in the document
    const spec = specOfCollection(s.parent)
    if (!spec) continue
    if (doc.getMap<unknown>(s.parent).get(s.parentSub) !== undefined) continue
    const key = `${spec.collection}/${s.parentSub}`
    if (first === undefined) first = key
    else {
      seen ??= new Set([first])
      if (seen.has(key)) continue
      seen.add(key)
    }
    counts.set(spec.type, (counts.get(spec.type) ?? 0) + 1)
  }
  return counts
}
