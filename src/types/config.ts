/** Server configuration, validated from the environment by `config.ts` (protocol §8). */
import type { PlanTable } from '../models/plans.js'
import type { ServerLimits } from '../models/server-limits.js'
import type { SnapshotRetention } from '../services/operators/snapshot-schedule.js'

export interface ServerConfig {
  host: string
  port: number
  dataDir: string
  /** PostgreSQL store (postgres:// or postgresql:// URL) instead of LevelDB under dataDir; unset: LevelDB. */
  databaseUrl?: string | undefined
  /** With `databaseUrl`: this node is one of a cluster (protocol §11; leases in PostgreSQL, docs/architecture.md). */
  redisUrl?: string | undefined
  /** Prefix of this cluster's Redis channels (several clusters, or test runs, can share one Redis). */
  redisKeyPrefix?: string | undefined
  /** How clients reach this node (the `url` of a `moved` refusal); default `http://HOST:PORT`. */
  publicUrl?: string | undefined
  /** This node's id in the cluster's leases; default a random id per process start. */
  nodeId?: string | undefined
  /** A user's lease lasts this long without a renewal (renewed every third of it while the document is loaded). */
  leaseTtlMs?: number | undefined
  jwtSecret: string
  adminToken: string
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** How long a document with no sockets stays in memory before it is unloaded. */
  docIdleMs: number
  /** Compact a document's update log once it holds this many entries... */
  compactMaxUpdates: number
  /** ...or this many bytes. */
  compactMaxBytes: number
  /** Logs larger than this (bytes) are compacted off the event loop, in a worker (default 32 KiB; tests set it). */
  compactOffloadBytes?: number
  /** Largest Socket.IO message accepted from a client (engine.io maxHttpBufferSize). */
  maxMessageBytes: number
  /** Outgoing WebSocket frames at least this large are compressed (permessage-deflate). */
  compressThresholdBytes: number
  /** fsync every group commit (survives power loss, not only a process crash). */
  syncWrites: boolean
  /**
   * Relay a Yjs update to the user's other devices once it is applied in
   * memory, before it is durable (default true); its ack still waits for the
   * commit. False: relays wait for the commit too.
   */
  relayBeforeDurable?: boolean
  /** Limits per plan (`models/plans.ts`); the table's values unless a test passes others. */
  plans: PlanTable
  /** Server-wide rate limits (`models/server-limits.ts`). */
  limits: ServerLimits
  /** Soft-deleted entities are purged once deleted this many days ago. */
  trashRetentionDays: number
  /** How often changed documents get a scheduled snapshot (0: never). */
  snapshotEveryMs: number
  /** Which scheduled snapshots are kept: the newest of each of the last `hours` hours and `days` days. */
  snapshotRetention: SnapshotRetention
}
