/**
 * Opens the server's store: PostgreSQL when DATABASE_URL is set
 * (postgres.repository.ts), else LevelDB under DATA_DIR (the embedded default).
 * Either refuses, with a `StoreLockedError`, a store another process holds,
 * except PostgreSQL in cluster mode (REDIS_URL too), where users' leases
 * replace the store lock.
 */
import type { ServerConfig } from '../types/config.js'
import type { Logger } from '../utils/logger.js'
import type { DocumentStore } from './document.repository.js'
import { openLevelStore } from './level.repository.js'
import { openPostgresStore } from './postgres.repository.js'
import type { ClusterNode } from './postgres-leases.js'

export function openDocumentStore(
  config: Pick<ServerConfig, 'dataDir' | 'syncWrites' | 'databaseUrl'> & Partial<Pick<ServerConfig, 'redisUrl' | 'publicUrl' | 'nodeId' | 'leaseTtlMs'>>,
  log?: Logger,
): Promise<DocumentStore> {
  if (!config.databaseUrl) return openLevelStore(config.dataDir, { syncWrites: config.syncWrites })
  return openPostgresStore(config.databaseUrl, log, { cluster: clusterNode(config) })
}

/** This node of a cluster (DATABASE_URL and REDIS_URL, protocol §11), or undefined when the server runs alone. */
export function clusterNode(config: Partial<Pick<ServerConfig, 'databaseUrl' | 'redisUrl' | 'publicUrl' | 'nodeId' | 'leaseTtlMs'>>): ClusterNode | undefined {
  if (!config.databaseUrl || !config.redisUrl) return undefined
  if (!config.publicUrl || !config.nodeId) throw new Error('a cluster node needs its PUBLIC_URL and NODE_ID (config.ts sets both)')
  return { nodeId: config.nodeId, publicUrl: config.publicUrl, leaseTtlMs: config.leaseTtlMs ?? 10_000 }
}
