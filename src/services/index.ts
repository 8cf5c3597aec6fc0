/** Wires the services of one server over one open store's repository. */
import type { DocumentLeases, DocumentRepository } from '../repositories/document.repository.js'
import type { ServerConfig } from '../types/config.js'
import type { Logger } from '../utils/logger.js'
import { Metrics } from '../utils/metrics.js'
import { DocumentRegistry } from './document-registry.js'
import { StateWorker } from './operators/state-worker.js'
import { recordTouched, unindexedEntities } from './entity-index.js'
import type { SyncDocument } from './sync-document.js'
import { SyncService } from './sync.service.js'
import { OperatorService } from './operators/operator.service.js'
import { SnapshotSchedule } from './operators/snapshot-schedule.js'
import { UpdateCommitter } from './update-committer.js'

export interface Services {
  sync: SyncService
  registry: DocumentRegistry
  operators: OperatorService
  snapshots: SnapshotSchedule
  /** Writes of every document queued or being written in the group commit. */
  pendingWrites(): number
  /** Refuses new changes and finishes (acks included) every accepted one. */
  drain(): Promise<void>
  /** Drains, then unloads every document. */
  close(): Promise<void>
}

/** How often the trash of documents kept loaded is purged of what passed its retention. */
const TRASH_SWEEP_MS = 3600_000

/** Indexes the entities of a loaded document that the index lacks, so it can always be rebuilt from the document. */
function rebuildIndex(doc: SyncDocument, committer: UpdateCommitter, log: Logger): void {
  const missing = unindexedEntities(doc)
  if (missing.length === 0) return
  const entities = recordTouched(doc, missing, 'server')
  log.warn({ docId: doc.id, entities: entities.length }, 'entity index rebuilt from the document')
  committer.commit(doc, { entities }).catch((err: unknown) => log.error({ err, docId: doc.id }, 'index rebuild not stored'))
}

export function createServices(
  repo: DocumentRepository,
  config: Pick<ServerConfig, 'docIdleMs' | 'compactMaxUpdates' | 'compactMaxBytes'> &
    Partial<Pick<ServerConfig, 'compactOffloadBytes' | 'plans' | 'relayBeforeDurable' | 'trashRetentionDays' | 'snapshotEveryMs' | 'snapshotRetention'>>,
  log: Logger,
  metrics: Metrics = new Metrics(),
  leases?: DocumentLeases,
): Services {
  const registry: DocumentRegistry = new DocumentRegistry(
    repo,
    { docIdleMs: config.docIdleMs },
    (doc) => {
      rebuildIndex(doc, committer, log)
      committer.compactIfDue(doc) // a log over a threshold at load is compacted right away
      // Change ids past their TTL were not loaded; drop them from disk too.
      repo.pruneChangeIds(doc.id).catch((err: unknown) => log.warn({ err, docId: doc.id }, 'pruning change ids failed'))
      // Entities in the trash past its retention go (a document kept loaded is swept by the operators' timer).
      operators.purgeTrash(doc).catch((err: unknown) => log.warn({ err, docId: doc.id }, 'purging the trash failed'))
    },
    log,
    leases,
  )
  // One worker thread merges logs off the event loop: large compactions and every snapshot.
  const states = new StateWorker()
  const committer = new UpdateCommitter(repo, config, (doc, settled) => registry.evict(doc, settled), log, metrics, (updates, resume) => states.merge(updates, resume))
  // A lease found lost (cluster mode): the document's queued commits are refused, it is dropped and its
  // sockets closed, as after a failed write; other documents' commits go on.
  leases?.onLost((docId) => {
    const doc = registry.peek(docId)
    if (doc && !doc.evicted) committer.drop(doc, new Error(`the lease of ${docId} is lost`))
  })
  const sync = new SyncService(registry, committer, repo, config.plans, metrics, { relayBeforeDurable: config.relayBeforeDurable ?? true })
  const operators = new OperatorService(
    registry,
    committer,
    repo,
    sync,
    { trashRetentionDays: config.trashRetentionDays ?? 30 },
    (meta) => metrics.snapshotsTaken.inc({ reason: meta.reason }),
    states,
  )
  const snapshots = new SnapshotSchedule(
    operators,
    repo,
    { everyMs: config.snapshotEveryMs ?? 0, retention: config.snapshotRetention ?? { hours: 24, days: 30 } },
    log,
  )
  snapshots.start()
  const sweep = setInterval(() => {
    for (const doc of registry.loadedDocuments()) {
      operators.purgeTrash(doc).catch((err: unknown) => log.warn({ err, docId: doc.id }, 'purging the trash failed'))
    }
  }, TRASH_SWEEP_MS).unref()
  return {
    sync,
    registry,
    operators,
    snapshots,
    pendingWrites: () => committer.pendingWrites,
    drain: () => sync.drain(),
    async close() {
      clearInterval(sweep)
      await snapshots.stop()
      await sync.drain()
      await operators.close()
      await registry.close()
    },
  }
}
