/** Wires the services of one server over one open store. */
import type { PlanTable } from '../models/plans.js'
import type { Store } from '../repositories/level-store.js'
import { DocumentRepository } from '../repositories/document.repository.js'
import type { ServerConfig } from '../types/config.js'
import type { Logger } from '../utils/logger.js'
import { DocumentRegistry } from './document-registry.js'
import { recordTouched, unindexedEntities } from './entity-index.js'
import type { SyncDocument } from './sync-document.js'
import { SyncService } from './sync.service.js'
import { UpdateCommitter } from './update-committer.js'

export interface Services {
  sync: SyncService
  registry: DocumentRegistry
  /** Refuses new changes and finishes (acks included) every accepted one. */
  drain(): Promise<void>
  /** Drains, then unloads every document. */
  close(): Promise<void>
}

/** Indexes the entities of a loaded document that the index lacks, so it can always be rebuilt from the document. */
function rebuildIndex(doc: SyncDocument, committer: UpdateCommitter, log: Logger): void {
  const missing = unindexedEntities(doc)
  if (missing.length === 0) return
  const entities = recordTouched(doc, missing, 'server')
  log.warn({ docId: doc.id, entities: entities.length }, 'entity index rebuilt from the document')
  committer.commit(doc, { entities }).catch((err: unknown) => log.error({ err, docId: doc.id }, 'index rebuild not stored'))
}

export function createServices(
  store: Store,
  config: Pick<ServerConfig, 'syncWrites' | 'docIdleMs' | 'compactMaxUpdates' | 'compactMaxBytes'> & { plans?: PlanTable },
  log: Logger,
): Services {
  const repo = new DocumentRepository(store, { syncWrites: config.syncWrites })
  const registry: DocumentRegistry = new DocumentRegistry(
    repo,
    { docIdleMs: config.docIdleMs },
    (doc) => {
      rebuildIndex(doc, committer, log)
      committer.compactIfDue(doc) // a log over a threshold at load is compacted right away
      // Change ids past their TTL were not loaded; drop them from disk too.
      repo.pruneChangeIds(doc.id).catch((err: unknown) => log.warn({ err, docId: doc.id }, 'pruning change ids failed'))
    },
    log,
  )
  const committer = new UpdateCommitter(repo, config, (doc, settled) => registry.evict(doc, settled), log)
  const sync = new SyncService(registry, committer, repo, config.plans)
  return {
    sync,
    registry,
    drain: () => sync.drain(),
    async close() {
      await sync.drain()
      await registry.close()
    },
  }
}
