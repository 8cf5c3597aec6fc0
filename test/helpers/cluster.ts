/**
 * A node of a test cluster (protocol §11) in a child process: the test's
 * PostgreSQL schema, Redis with the test's key prefix, its own port as its
 * PUBLIC_URL. Nodes of one test share the fixture's data dir, so they share
 * the generated JWT secret and admin token as a real cluster shares them.
 */
import { freePort, startChildServer, type ChildServer } from './child-server.js'

export interface ClusterEnv {
  dataDir: string
  databaseUrl: string
  redisUrl: string
  redisKeyPrefix: string
  leaseTtlMs: number
}

/** `port`: a restarted node's own (its PUBLIC_URL stays the same); a free one by default. */
export async function startClusterNode(cluster: ClusterEnv, nodeId: string, env: Record<string, string> = {}, port?: number): Promise<ChildServer> {
  port ??= await freePort()
  return startChildServer({
    dataDir: cluster.dataDir,
    port,
    env: {
      DATABASE_URL: cluster.databaseUrl,
      REDIS_URL: cluster.redisUrl,
      REDIS_KEY_PREFIX: cluster.redisKeyPrefix,
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      NODE_ID: nodeId,
      LEASE_TTL_MS: String(cluster.leaseTtlMs),
      ...env,
    },
  })
}
