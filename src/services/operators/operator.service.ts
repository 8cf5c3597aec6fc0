/**
 * What operators do to a user's document (protocol §9): snapshots, restore,
 * trash, devices, summaries, compaction and erasure. Writes go through the
 * ordinary write path (the group commit, the index, the change feed), so
 * every live device sees them as it sees any change; a user's connections
 * are reached through `DeviceConnections`, which the transport implements.
 */
import { randomUUID } from 'node:crypto'
import type * as Y from 'yjs'
import { DELETED, ENTITY_SPECS } from '../../models/entity-schema.js'
import type { DocumentSummary, EntityCounts, SnapshotMeta, SnapshotReason } from '../../models/records.js'
import type { DocumentRepository } from '../../repositories/document.repository.js'
import { SyncEntityType } from '../../types/sync.js'
import { ErrorCode, SyncError } from '../../utils/errors.js'
import type { DocumentRegistry } from '../document-registry.js'
import { entitiesOf, entityMap } from '../entity-index.js'
import { SyncDocument } from '../sync-document.js'
import type { SyncService } from '../sync.service.js'
import type { SnapshotRequest, UpdateCommitter } from '../update-committer.js'
import { docFromState, documentJson, type DocumentJson } from './document-json.js'
import { applyRestore, planRestore, RESTORE_DEVICE, type RestoreScope } from './restore.js'
import { StateWorker } from './state-worker.js'
import { purgeTrash, restoreFromTrash, trashOf } from './trash.js'
import type { DeviceInfo, RestoreResult, TrashEntry, UserSummary } from '../../types/operators.js'

/** The user's live connections, as the transport holds them. */
export interface DeviceConnections {
  /** Connected sockets per device of the user (on every node of a cluster). */
  connectedDevices(userId: string): Promise<Map<string, number>>
  /** Closes the sockets of one device of the user, or of all its devices (on every node of a cluster). */
  disconnect(userId: string, deviceId?: string): Promise<void>
}

export const NO_CONNECTIONS: DeviceConnections = { connectedDevices: () => Promise.resolve(new Map()), disconnect: () => Promise.resolve() }

export interface RestoreRequest {
  snapshotId?: string
  at?: number
  scope?: RestoreScope
  dryRun?: boolean
}

const DAY_MS = 24 * 3600_000
const ADMIN_DEVICE = 'admin'
const notFound = (what: string): SyncError => new SyncError(ErrorCode.NOT_FOUND, what)
const ZERO_COUNTS = Object.fromEntries(Object.values(SyncEntityType).map((t) => [t, 0])) as EntityCounts

export class OperatorService {
  private connections: DeviceConnections = NO_CONNECTIONS

  constructor(
    private readonly registry: DocumentRegistry,
    private readonly committer: UpdateCommitter,
    private readonly repo: DocumentRepository,
    private readonly sync: SyncService,
    private readonly options: { trashRetentionDays: number },
    /** Hears of every snapshot stored, for the metrics. */
    private readonly onSnapshot: (meta: SnapshotMeta) => void = () => {},
    /** Merges snapshots off the event loop (shared with the committer's compactions); closed with this service. */
    private readonly states: StateWorker = new StateWorker(),
  ) {}

  /** The transport's connections, from now on. */
  connectTo(connections: DeviceConnections): void {
    this.connections = connections
  }

  /** NOT_FOUND for a user the server holds nothing of (loaded or stored). */
  private async assertUser(userId: string): Promise<void> {
    if (!this.registry.peek(userId) && !(await this.repo.exists(userId))) throw notFound(`no user ${userId}`)
  }

  /** Runs `work` on the user's loaded document (loading it if needed); 404 for a user with no data. */
  async withDocument<T>(userId: string, work: (doc: SyncDocument) => Promise<T> | T): Promise<T> {
    await this.assertUser(userId)
    const lease = this.registry.acquire(userId)
    try {
      return await work(await lease.document)
    } finally {
      lease.release()
    }
  }

  // ---- users -------------------------------------------------------------

  async listUsers(limit: number, cursor: string | undefined): Promise<{ users: UserSummary[]; cursor: string | null }> {
    const ids = await this.repo.documentIds(cursor, limit)
    const users = await Promise.all(ids.map((id) => this.summaryOf(id)))
    return { users, cursor: ids.length === limit ? (ids.at(-1) ?? null) : null }
  }

  async user(userId: string): Promise<UserSummary> {
    await this.assertUser(userId)
    return this.summaryOf(userId)
  }

  private async summaryOf(userId: string): Promise<UserSummary> {
    const loaded = this.registry.peek(userId)
    const stored = loaded ? undefined : await this.repo.readSummary(userId)
    const summary: DocumentSummary = loaded
      ? { bytes: loaded.logBytes, entityCounts: loaded.entityCounts(), lastActivityAt: loaded.clock }
      : (stored ?? { bytes: 0, entityCounts: ZERO_COUNTS, lastActivityAt: 0 })
    return { userId, ...summary, devicesConnected: (await this.connections.connectedDevices(userId)).size, loaded: loaded !== undefined }
  }

  document(userId: string): Promise<DocumentJson> {
    return this.withDocument(userId, (doc) => documentJson(doc.doc))
  }

  /**
   * The user's document as stored, loaded apart from the registry: nothing
   * runs at load (no index rebuild, compaction or trash purge) and nothing is
   * written, for offline reads and checks (`npm run admin -- verify`). The
   * caller destroys `doc.doc`. 404 for a user with no data.
   */
  async storedDocument(userId: string): Promise<SyncDocument> {
    if (!(await this.repo.exists(userId))) throw notFound(`no user ${userId}`)
    return new SyncDocument(userId, await this.repo.read(userId))
  }

  /** Compacts the user's log now, due or not. */
  compact(userId: string): Promise<{ bytesBefore: number; bytesAfter: number }> {
    return this.withDocument(userId, async (doc) => {
      const bytesBefore = doc.logBytes
      await this.committer.commit(doc, { compact: true })
      return { bytesBefore, bytesAfter: doc.logBytes }
    })
  }

  /** Closes the user's sockets, then removes every key of theirs. */
  async erase(userId: string): Promise<void> {
    await this.assertUser(userId)
    await this.connections.disconnect(userId)
    await this.registry.exclusive(userId, (doc) => this.committer.settled(doc), () => this.repo.erase(userId))
  }

  // ---- snapshots ---------------------------------------------------------

  /** Takes a snapshot with the next group commit: it holds exactly what is then stored. */
  takeSnapshot(userId: string, reason: SnapshotReason, label?: string): Promise<SnapshotMeta> {
    return this.withDocument(userId, (doc) => this.snapshotOf(doc, reason, label))
  }

  /** The state the next batch leaves stored, merged off the event loop, and stored as a snapshot. */
  private async snapshotOf(doc: SyncDocument, reason: SnapshotReason, label?: string): Promise<SnapshotMeta> {
    const request: SnapshotRequest = { id: randomUUID(), userId: doc.id, reason, ...(label === undefined ? {} : { label }) }
    await this.committer.commit(doc, { snapshot: request })
    if (!request.taken || !request.log) throw new SyncError(ErrorCode.UNAVAILABLE, 'the snapshot was not taken; try again', { retryAfterMs: 1000 })
    const state = await this.states.merge(await request.log)
    const meta: SnapshotMeta = { ...request.taken, bytes: state.byteLength }
    await this.repo.putSnapshot(doc.id, meta, state)
    this.onSnapshot(meta)
    return meta
  }

  /** Stops the worker that merges snapshots (and compactions: call it once the committer is drained). */
  close(): Promise<void> {
    return this.states.close()
  }

  /** The user's snapshots, newest first. */
  async snapshots(userId: string): Promise<SnapshotMeta[]> {
    await this.assertUser(userId)
    return (await this.repo.snapshots(userId)).sort((a, b) => b.takenAt - a.takenAt)
  }

  async snapshot(userId: string, id: string): Promise<SnapshotMeta & { document: DocumentJson }> {
    const meta = await this.snapshotMeta(userId, id)
    const state = await this.snapshotState(userId, id)
    const doc = docFromState(state)
    try {
      return { ...meta, document: documentJson(doc) }
    } finally {
      doc.destroy()
    }
  }

  async snapshotMeta(userId: string, id: string): Promise<SnapshotMeta> {
    const meta = await this.repo.snapshot(userId, id)
    if (!meta) throw notFound(`no snapshot ${id} of user ${userId}`)
    return meta
  }

  async snapshotState(userId: string, id: string): Promise<Uint8Array> {
    const state = await this.repo.snapshotState(userId, id)
    if (!state) throw notFound(`no snapshot ${id} of user ${userId}`)
    return state
  }

  /** Stores an exported snapshot's state for the user (`reason: 'import'`); INVALID_PAYLOAD unless it is a Yjs update. */
  async importSnapshot(userId: string, state: Uint8Array, label?: string): Promise<SnapshotMeta> {
    let doc
    try {
      doc = docFromState(state)
    } catch (cause) {
      throw new SyncError(ErrorCode.INVALID_PAYLOAD, 'the body is not a Yjs update (an exported snapshot)', { cause })
    }
    const entityCounts = countLive(doc)
    doc.destroy()
    const meta: SnapshotMeta = {
      id: randomUUID(),
      userId,
      takenAt: Date.now(),
      bytes: state.byteLength,
      entityCounts,
      reason: 'import',
      ...(label === undefined ? {} : { label }),
      clock: 0,
    }
    await this.repo.putSnapshot(userId, meta, state)
    this.onSnapshot(meta)
    return meta
  }

  async deleteSnapshot(userId: string, id: string): Promise<void> {
    await this.snapshotMeta(userId, id)
    await this.repo.deleteSnapshots(userId, [id])
  }

  // ---- restore -----------------------------------------------------------

  /**
   * Makes the live content equal to a snapshot's (or one entity's), by
   * forward changes; takes a `before-restore` snapshot first. `at`: the newest
   * snapshot taken at or before it.
   */
  restore(userId: string, request: RestoreRequest): Promise<RestoreResult> {
    return this.withDocument(userId, async (doc) => {
      const from = await this.chooseSnapshot(userId, request)
      const target = docFromState(await this.snapshotState(userId, from.id))
      try {
        if (request.scope && !planTouches(target, doc, request.scope)) {
          throw notFound(`${request.scope.entityType} ${request.scope.entityId} is neither in the snapshot nor in the document`)
        }
        if (request.dryRun) {
          const { counts } = planRestore(doc.doc, target, request.scope)
          return { restoredFrom: from.id, snapshotBefore: null, changed: counts, serverTimestamp: doc.clock }
        }
        const before = await this.snapshotOf(doc, 'before-restore')
        // Planned after the snapshot: what changed while it was written is restored too.
        const plan = planRestore(doc.doc, target, request.scope)
        this.sync.assertWritable(doc)
        const { update, indexWrites } = applyRestore(doc, plan, Date.now())
        const serverTimestamp = doc.clock
        await this.sync.commitAndPublish(doc, { userId, deviceId: RESTORE_DEVICE }, serverTimestamp, update, indexWrites)
        return { restoredFrom: from.id, snapshotBefore: before.id, changed: plan.counts, serverTimestamp }
      } finally {
        target.destroy()
      }
    })
  }

  private async chooseSnapshot(userId: string, request: RestoreRequest): Promise<SnapshotMeta> {
    if (request.snapshotId !== undefined) return this.snapshotMeta(userId, request.snapshotId)
    const at = request.at ?? Date.now()
    const found = (await this.snapshots(userId)).find((s) => s.takenAt <= at)
    if (!found) throw notFound(`no snapshot of user ${userId} taken at or before ${at}`)
    return found
  }

  // ---- trash -------------------------------------------------------------

  trash(userId: string): Promise<TrashEntry[]> {
    return this.withDocument(userId, (doc) => trashOf(doc))
  }

  restoreFromTrash(userId: string, entityType: SyncEntityType, entityId: string): Promise<{ version: number; serverTimestamp: number }> {
    return this.withDocument(userId, async (doc) => {
      this.sync.assertWritable(doc)
      const revived = restoreFromTrash(doc, entityType, entityId, ADMIN_DEVICE)
      if (!revived) throw notFound(`${entityType} ${entityId} is not in the trash`)
      const serverTimestamp = doc.clock
      await this.sync.commitAndPublish(doc, { userId, deviceId: ADMIN_DEVICE }, serverTimestamp, revived.update, revived.indexWrites)
      return { version: revived.indexWrites[0]?.record.version ?? 0, serverTimestamp }
    })
  }

  /** Purges what was deleted more than the retention before `now` from a loaded document; returns how many. */
  async purgeTrash(doc: SyncDocument, now = Date.now()): Promise<number> {
    if (doc.evicted) return 0
    const { update, removed } = purgeTrash(doc, now - this.options.trashRetentionDays * DAY_MS)
    if (removed.length === 0) return 0
    await this.sync.commitAndPublish(doc, { userId: doc.id, deviceId: 'trash' }, doc.clock, update, [], removed)
    return removed.length
  }

  // ---- devices -----------------------------------------------------------

  async devices(userId: string): Promise<DeviceInfo[]> {
    await this.assertUser(userId)
    const [stored, revoked] = await Promise.all([this.repo.listDevices(userId), this.repo.revokedDevices(userId)])
    const connected = await this.connections.connectedDevices(userId)
    // A loaded document knows the syncs completed since its last commit too.
    const byId = new Map([...stored.map((d) => [d.deviceId, d] as const), ...(this.registry.peek(userId)?.devices ?? [])])
    const ids = new Set([...byId.keys(), ...connected.keys(), ...revoked.keys()])
    return [...ids].sort().map((deviceId) => {
      const d = byId.get(deviceId)
      return {
        deviceId,
        connected: connected.has(deviceId),
        lastSeenAt: d?.lastSeenAt ?? d?.lastSyncTimestamp ?? null,
        lastSyncTimestamp: d?.lastSyncTimestamp ?? null,
        revoked: revoked.has(deviceId),
      }
    })
  }

  async disconnectDevice(userId: string, deviceId: string): Promise<void> {
    await this.knownDevice(userId, deviceId)
    await this.connections.disconnect(userId, deviceId)
  }

  /** Refuses the device at every later connect (and HTTP request) until unrevoked; closes its sockets now. */
  async revoke(userId: string, deviceId: string): Promise<void> {
    await this.assertUser(userId)
    await this.repo.setRevoked(userId, deviceId, Date.now())
    await this.connections.disconnect(userId, deviceId)
  }

  async unrevoke(userId: string, deviceId: string): Promise<void> {
    if (!(await this.repo.isRevoked(userId, deviceId))) throw notFound(`device ${deviceId} of user ${userId} is not revoked`)
    await this.repo.setRevoked(userId, deviceId, undefined)
  }

  isRevoked(userId: string, deviceId: string): Promise<boolean> {
    return this.repo.isRevoked(userId, deviceId)
  }

  private async knownDevice(userId: string, deviceId: string): Promise<void> {
    if (!(await this.devices(userId)).some((d) => d.deviceId === deviceId)) throw notFound(`no device ${deviceId} of user ${userId}`)
  }
}

/** Whether the scoped entity exists in the document or the snapshot. */
function planTouches(snapshot: Y.Doc, doc: SyncDocument, scope: RestoreScope): boolean {
  const spec = ENTITY_SPECS[scope.entityType]
  return entityMap(doc.doc, spec, scope.entityId) !== undefined || entityMap(snapshot, spec, scope.entityId) !== undefined
}

/** Live entities per type of a document. */
function countLive(doc: Y.Doc): EntityCounts {
  const counts = { ...ZERO_COUNTS }
  for (const { spec, map } of entitiesOf(doc)) if (map.get(DELETED) !== true) counts[spec.type]++
  return counts
}
