/**
 * Opens the server's store: PostgreSQL when DATABASE_URL is set
 * (postgres.repository.ts), else LevelDB under DATA_DIR (the embedded default).
 * Either refuses, with a `StoreLockedError`, a store another process holds.
 */
import type { ServerConfig } from '../types/config.js'
import type { Logger } from '../utils/logger.js'
import type { DocumentStore } from './document.repository.js'
import { openLevelStore } from './level.repository.js'
import { openPostgresStore } from './postgres.repository.js'

export function openDocumentStore(config: Pick<ServerConfig, 'dataDir' | 'syncWrites' | 'databaseUrl'>, log?: Logger): Promise<DocumentStore> {
  return config.databaseUrl ? openPostgresStore(config.databaseUrl, log) : openLevelStore(config.dataDir, { syncWrites: config.syncWrites })
}
