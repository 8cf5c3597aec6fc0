/** Wires the services of one server over one open store. */
import type { Store } from '../repositories/level-store.js'
import { UpdateLogRepository } from '../repositories/update-log.repository.js'
import type { ServerConfig } from '../types/config.js'
import type { Logger } from '../utils/logger.js'
import { Compactor } from './compactor.js'
import { DocumentRegistry } from './document-registry.js'
import { SyncService } from './sync.service.js'
import { UpdateCommitter } from './update-committer.js'

export interface Services {
  sync: SyncService
  registry: DocumentRegistry
  /** Refuses new updates and finishes (acks included) every accepted one. */
  drain(): Promise<void>
  /** Drains, then unloads every document. */
  close(): Promise<void>
}

export function createServices(
  store: Store,
  config: Pick<ServerConfig, 'syncWrites' | 'docIdleMs' | 'compactMaxUpdates' | 'compactMaxBytes'>,
  log: Logger,
): Services {
  const updateLog = new UpdateLogRepository(store, { syncWrites: config.syncWrites })
  const compactor = new Compactor(updateLog, config, log)
  const committer = new UpdateCommitter(updateLog, compactor, log)
  const registry = new DocumentRegistry(updateLog, compactor, { docIdleMs: config.docIdleMs }, log)
  const sync = new SyncService(registry, committer)
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
