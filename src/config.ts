/**
 * Configuration from the environment (protocol §8), validated with clear
 * errors. `JWT_SECRET` and `ADMIN_TOKEN` default to secrets generated once into
 * DATA_DIR (mode 0600) and reused on every later start.
 */
import { randomBytes } from 'node:crypto'
import path from 'node:path'
import { z } from 'zod'
import { PLANS } from './models/plans.js'
import { SERVER_LIMITS } from './models/server-limits.js'
import type { ServerConfig } from './types/config.js'
import { readOrCreateSecret } from './utils/secrets.js'
import { parseRetention } from './services/operators/snapshot-schedule.js'

/** Prefix of the cluster's Redis channels when REDIS_KEY_PREFIX is not set. */
export const DEFAULT_REDIS_KEY_PREFIX = 'superclip'

const intIn = (min: number, max: number) => z.coerce.number().int().min(min).max(max)
/** A URL of one of the schemes `scheme` matches (`what`: their names, for the message). */
const urlOf = (scheme: RegExp, what: string) =>
  z
    .string()
    .regex(scheme, `must be ${what} URL`)
    .refine((v) => URL.canParse(v), 'is not a valid URL')
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1')

const envSchema = z.object({
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: intIn(0, 65535).default(8080),
  DATA_DIR: z.string().min(1).default('./data'),
  DATABASE_URL: urlOf(/^postgres(ql)?:\/\//, 'a postgres:// or postgresql://').optional(),
  REDIS_URL: urlOf(/^rediss?:\/\//, 'a redis:// or rediss://').optional(),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,64}$/, 'must be 1-64 characters of [A-Za-z0-9._:-]')
    .default(DEFAULT_REDIS_KEY_PREFIX),
  PUBLIC_URL: urlOf(/^https?:\/\//, 'an http:// or https://').optional(),
  NODE_ID: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1-128 characters of [A-Za-z0-9._:-]')
    .optional(),
  LEASE_TTL_MS: intIn(300, 3600_000).default(10_000),
  JWT_SECRET: z.string().min(32, 'JWT_SECRET must be at least 32 characters').optional(),
  ADMIN_TOKEN: z.string().min(16, 'ADMIN_TOKEN must be at least 16 characters').optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DOC_IDLE_MS: intIn(0, 24 * 3600_000).default(30_000),
  // 4000, not 1000: at 1000 an import of 20,000 clips was merged 11-12 times (it appends while a merge runs),
  // states of up to 2.4 MB, on the server's core; the other users' ack p99 beside it had a median of 105 ms
  // against 58 at 4000 (docs/benchmarks.md, flood run). A load replays about this many entries after the
  // last state: 0-14% longer for a document written as 20,000 updates.
  COMPACT_MAX_UPDATES: intIn(2, 10_000_000).default(4000),
  COMPACT_MAX_BYTES: intIn(1024, 1 << 30).default(4 << 20),
  MAX_MESSAGE_BYTES: intIn(1024, 256 << 20).default(16 << 20),
  COMPRESS_THRESHOLD_BYTES: intIn(0, 256 << 20).default(32 << 10),
  SYNC_WRITES: bool.default(true),
  RELAY_BEFORE_DURABLE: bool.default(true),
  IP_CONNECTIONS_PER_SECOND: z.coerce.number().positive().max(1e6).default(SERVER_LIMITS.ipConnections.perSecond),
  IP_CONNECTION_BURST: intIn(1, 10_000_000).default(SERVER_LIMITS.ipConnections.burst),
  TRASH_RETENTION_DAYS: z.coerce.number().positive().max(36_500).default(30),
  SNAPSHOT_EVERY_MS: intIn(0, 365 * 24 * 3600_000).default(3600_000),
  SNAPSHOT_RETENTION: z
    .string()
    .default('24h,30d')
    .transform((v, ctx) => parseRetention(v) ?? (ctx.addIssue({ code: 'custom', message: 'must look like 24h,30d (hourly and daily snapshots kept)' }), z.NEVER)),
}).superRefine((e, ctx) => {
  // A cluster is nodes sharing one PostgreSQL database and one Redis (protocol §11): Redis alone is no cluster.
  if (e.REDIS_URL !== undefined && e.DATABASE_URL === undefined) {
    ctx.addIssue({ code: 'custom', path: ['REDIS_URL'], message: 'needs DATABASE_URL too (a cluster shares one PostgreSQL database)' })
  }
})

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Validates the environment; throws a `ConfigError` naming every bad variable. */
export function parseEnv(env: NodeJS.ProcessEnv): Omit<ServerConfig, 'jwtSecret' | 'adminToken'> & {
  jwtSecret: string | undefined
  adminToken: string | undefined
} {
  // Empty strings mean "unset", as in most shells' `VAR= cmd`.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''))
  const parsed = envSchema.safeParse(present)
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`)
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`)
  }
  const e = parsed.data
  return {
    host: e.HOST,
    port: e.PORT,
    dataDir: path.resolve(e.DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    publicUrl: (e.PUBLIC_URL ?? `http://${e.HOST}:${e.PORT}`).replace(/\/+$/, ''),
    nodeId: e.NODE_ID ?? `node-${randomBytes(6).toString('hex')}`,
    leaseTtlMs: e.LEASE_TTL_MS,
    jwtSecret: e.JWT_SECRET,
    adminToken: e.ADMIN_TOKEN,
    logLevel: e.LOG_LEVEL,
    docIdleMs: e.DOC_IDLE_MS,
    compactMaxUpdates: e.COMPACT_MAX_UPDATES,
    compactMaxBytes: e.COMPACT_MAX_BYTES,
    maxMessageBytes: e.MAX_MESSAGE_BYTES,
    compressThresholdBytes: e.COMPRESS_THRESHOLD_BYTES,
    syncWrites: e.SYNC_WRITES,
    relayBeforeDurable: e.RELAY_BEFORE_DURABLE,
    plans: PLANS,
    limits: { ...SERVER_LIMITS, ipConnections: { perSecond: e.IP_CONNECTIONS_PER_SECOND, burst: e.IP_CONNECTION_BURST } },
    trashRetentionDays: e.TRASH_RETENTION_DAYS,
    snapshotEveryMs: e.SNAPSHOT_EVERY_MS,
    snapshotRetention: e.SNAPSHOT_RETENTION,
  }
}

/** The full configuration: the environment plus the secrets kept in DATA_DIR. */
export async function loadConfig(env: NodeJS.ProcessEnv = process.env): Promise<ServerConfig> {
  const base = parseEnv(env)
  return {
    ...base,
    jwtSecret: base.jwtSecret ?? (await readOrCreateSecret(base.dataDir, 'jwt-secret')),
    adminToken: base.adminToken ?? (await readOrCreateSecret(base.dataDir, 'admin-token')),
  }
}
