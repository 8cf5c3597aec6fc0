/**
 * Issue 14's benchmark (`BENCH_ONLY=cluster npm run bench`, and part of the
 * full run): bench:peers' 100 users × 2 devices × 10 new clips (light
 * devices in load processes on CPU 1, bench-peers/workloads.ts `runFanout`)
 * against three setups of ours, each fresh:
 *
 * - **LevelDB**: the embedded default, one node (the baseline of the ratios);
 * - **PostgreSQL**: one node on `DATABASE_URL` (a fresh schema);
 * - **two nodes**: PostgreSQL and Redis, a cluster of two nodes, each user's
 *   devices sent to one of them by a hash of the user id (what a load
 *   balancer hashing on the user does), so every node owns half the users.
 *
 * Nodes are pinned to CPU 0, both nodes of the cluster on that one core:
 * this machine has two, and the other runs the load. PostgreSQL and Redis are
 * not pinned (they run where the machine puts them). Reported per setup:
 * updates/s and the nodes' CPU per update (medians of the rounds), the group
 * commit's duration (`superclip_commit_duration_seconds` of every node: mean,
 * and p50/p99 from its buckets) and PostgreSQL's own CPU (every `postgres`
 * process) per update, both over the measured rounds only (from the go to
 * the last arrival, the devices' connects excluded). BENCH_DATABASE_URL and BENCH_REDIS_URL (defaults: the local
 * services) say where they are; without them reachable the part is skipped
 * with the reason.
 */
import { readdir, readFile } from 'node:fs/promises'
import pg from 'pg'
import { createClient } from 'redis'
import { connectionConfig } from '../../src/repositories/postgres.repository.js'
import { freePort } from '../lib/server-process.js'
import { createSchema } from '../lib/postgres-schema.js'
import { BENCH_ADMIN_TOKEN, clockTicksPerSecond, pinSelf, startServer, type ServerHandle } from './server.js'
import { fmt } from './stats.js'
import { runFanout, type FanoutResult, type FanoutSpec } from '../bench-peers/workloads.js'
import { LOAD_CPU, OURS_ENV, SERVER_CPU, type TargetServer } from '../bench-peers/servers.js'
import { ensurePeers } from '../bench-peers/install.js'

export const BENCH_DATABASE_URL = process.env.BENCH_DATABASE_URL || 'postgres://127.0.0.1:5432/test'
export const BENCH_REDIS_URL = process.env.BENCH_REDIS_URL || 'redis://127.0.0.1:6379'

export type ClusterSpec = FanoutSpec

export type SetupName = 'LevelDB' | 'PostgreSQL' | 'two nodes'
const SETUPS: readonly SetupName[] = ['LevelDB', 'PostgreSQL', 'two nodes']

export interface CommitStats {
  commits: number
  /** Commits (database transactions on PostgreSQL) per second of the measured rounds. */
  perSec: number
  meanMs: number
  /** Upper bounds of the buckets holding the median and the 99th percentile, ms. */
  p50Ms: number
  p99Ms: number
}

export interface SetupResult {
  setup: SetupName
  fanout: FanoutResult
  commit: CommitStats
  /** PostgreSQL's CPU over the measured rounds ÷ their updates, µs; null without PostgreSQL. */
  dbCpuUsPerUpdate: number | null
}

export interface ClusterResult {
  spec: ClusterSpec
  /** Why the part did not run (PostgreSQL or Redis unreachable), or null. */
  skipped: string | null
  /** Nodes on SERVER_CPU and the load on LOAD_CPU (taskset could pin). */
  pinned: boolean
  setups: SetupResult[]
}

/** What is read from a setup over its measured rounds. */
interface Readings {
  commits: CommitHistogram
  /** PostgreSQL's CPU over the measured rounds, µs (none without PostgreSQL). */
  dbCpuUs: number | undefined
}

async function reachable(): Promise<string | null> {
  const client = new pg.Client({ ...connectionConfig(BENCH_DATABASE_URL), connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query('SELECT 1')
  } catch (err) {
    return `PostgreSQL at ${BENCH_DATABASE_URL} unreachable (${err instanceof Error ? err.message : String(err)})`
  } finally {
    await client.end().catch(() => undefined)
  }
  const redis = createClient({ url: BENCH_REDIS_URL, socket: { connectTimeout: 3000, reconnectStrategy: false } })
  redis.on('error', () => undefined)
  try {
    await redis.connect()
    await redis.ping()
  } catch (err) {
    return `Redis at ${BENCH_REDIS_URL} unreachable (${err instanceof Error ? err.message : String(err)})`
  } finally {
    if (redis.isOpen) await redis.close().catch(() => undefined)
  }
  return null
}

/** CPU of every process named `postgres` on this machine, µs. */
async function postgresCpuUs(): Promise<number> {
  let ticks = 0
  for (const pid of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
      const close = stat.lastIndexOf(')')
      if (stat.slice(stat.indexOf('(') + 1, close) !== 'postgres') continue
      const fields = stat.slice(close + 2).split(' ')
      ticks += Number(fields[11]) + Number(fields[12]) // utime, stime
    } catch {
      // gone meanwhile
    }
  }
  return (ticks / clockTicksPerSecond()) * 1e6
}

/** `superclip_commit_duration_seconds` of some nodes together: cumulative bucket counts by upper bound (s), sum, count. */
interface CommitHistogram {
  buckets: Map<number, number>
  sum: number
  count: number
}

async function commitHistogram(urls: readonly string[]): Promise<CommitHistogram> {
  const h: CommitHistogram = { buckets: new Map(), sum: 0, count: 0 }
  for (const url of urls) {
    const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` }, signal: AbortSignal.timeout(10_000) })
    const text = await res.text()
    if (!res.ok) throw new Error(`GET ${url}/metrics: HTTP ${res.status} ${text.slice(0, 200)}`)
    for (const m of text.matchAll(/^superclip_commit_duration_seconds_bucket\{le="([^"]+)"\} (\d+)/gm)) {
      const le = m[1] === '+Inf' ? Infinity : Number(m[1])
      h.buckets.set(le, (h.buckets.get(le) ?? 0) + Number(m[2]))
    }
    h.sum += Number(/^superclip_commit_duration_seconds_sum (\S+)/m.exec(text)?.[1] ?? 0)
    h.count += Number(/^superclip_commit_duration_seconds_count (\S+)/m.exec(text)?.[1] ?? 0)
  }
  return h
}

/** Adds `to - from` (one measured round) into `into`. */
function addDelta(into: CommitHistogram, from: CommitHistogram, to: CommitHistogram): void {
  for (const [le, n] of to.buckets) into.buckets.set(le, (into.buckets.get(le) ?? 0) + n - (from.buckets.get(le) ?? 0))
  into.sum += to.sum - from.sum
  into.count += to.count - from.count
}

function commitStats(h: CommitHistogram, seconds: number): CommitStats {
  const sorted = [...h.buckets].sort((a, b) => a[0] - b[0])
  const quantile = (q: number) => (sorted.find(([, n]) => n >= q * h.count)?.[0] ?? Infinity) * 1000
  return { commits: h.count, perSec: h.count / seconds, meanMs: h.count > 0 ? (h.sum / h.count) * 1000 : Number.NaN, p50Ms: quantile(0.5), p99Ms: quantile(0.99) }
}

/** Whether this run pinned the load (this process and its load workers) to LOAD_CPU, and so the nodes to SERVER_CPU. */
let pinned = false

/** One node of ours with `env`, pinned to the server CPU from its spawn on. */
function node(dataDir: string, env: Record<string, string>, port?: number): Promise<ServerHandle> {
  return startServer(dataDir, { ...OURS_ENV, ...env }, { ...(port === undefined ? {} : { port }), ...(pinned ? { cpus: SERVER_CPU } : {}) })
}

/** Starts `setup` over `dataDir`; what it reads over the measured rounds adds up in `readings`. */
async function startSetup(setup: SetupName, dataDir: string, readings: Readings): Promise<TargetServer> {
  const schema = setup === 'LevelDB' ? undefined : await createSchema(BENCH_DATABASE_URL, 'bench')
  const handles: ServerHandle[] = []
  try {
    if (!schema) handles.push(await node(dataDir, {}))
    else if (setup === 'PostgreSQL') handles.push(await node(dataDir, { DATABASE_URL: schema.url }))
    else {
      const prefix = `superclip-bench-${schema.name}`
      for (const id of ['node-a', 'node-b']) {
        const port = await freePort()
        const env = { DATABASE_URL: schema.url, REDIS_URL: BENCH_REDIS_URL, REDIS_KEY_PREFIX: prefix, PUBLIC_URL: `http://127.0.0.1:${port}`, NODE_ID: id }
        handles.push(await node(dataDir, env, port))
      }
    }
  } catch (err) {
    await Promise.allSettled(handles.map((h) => h.stop()))
    await schema?.drop()
    throw err
  }
  const urls = handles.map((h) => h.url)
  const [first] = handles as [ServerHandle]
  const cpuOf = async (h: ServerHandle) => {
    const c = await h.cpu()
    return c.userUs + c.systemUs
  }
  let before: { commits: CommitHistogram; dbCpuUs: number } | undefined
  const stop = async () => {
    await Promise.all(handles.map((h) => h.stop()))
    await schema?.drop()
  }
  return {
    name: 'ours',
    url: first.url,
    ...(handles.length > 1 ? { urls } : {}),
    pid: first.pid,
    startMs: first.startMs,
    cpuUs: async () => (await Promise.all(handles.map(cpuOf))).reduce((a, b) => a + b, 0),
    rssMiB: () => first.rssMiB(),
    probe: {
      async start() {
        before = { commits: await commitHistogram(urls), dbCpuUs: schema ? await postgresCpuUs() : 0 }
      },
      async end() {
        if (!before) return
        const dbCpuUs = schema ? await postgresCpuUs() : 0
        addDelta(readings.commits, before.commits, await commitHistogram(urls))
        if (schema) readings.dbCpuUs = (readings.dbCpuUs ?? 0) + dbCpuUs - before.dbCpuUs
        before = undefined
      },
    },
    stop,
    // Not used by the fan-out workload: a graceful stop.
    kill: stop,
  }
}

export async function runCluster(spec: ClusterSpec, progress: (line: string) => void): Promise<ClusterResult> {
  const skipped = await reachable()
  if (skipped) {
    progress(`cluster: skipped: ${skipped}`)
    return { spec, skipped, pinned: false, setups: [] }
  }
  // SocketIoLight's ws comes from .bench/peers, installed on first use.
  await ensurePeers(progress)
  // Pinned here, not by an earlier part: the SDK part gives this process every CPU again when it ends.
  const unpin = await pinSelf(LOAD_CPU)
  pinned = unpin !== undefined
  try {
    return { spec, skipped: null, pinned, setups: await runSetups(spec, progress) }
  } finally {
    unpin?.()
  }
}

async function runSetups(spec: ClusterSpec, progress: (line: string) => void): Promise<SetupResult[]> {
  const setups: SetupResult[] = []
  for (const setup of SETUPS) {
    progress(`cluster: 100 users x 2 devices on ${setup} ...`)
    const readings: Readings = { commits: { buckets: new Map(), sum: 0, count: 0 }, dbCpuUs: undefined }
    const fanout = await runFanout((dir) => startSetup(setup, dir, readings), spec, progress, pinned)
    const measuredUpdates = fanout.rounds_.reduce((n, r) => n + r.updates, 0)
    setups.push({
      setup,
      fanout,
      commit: commitStats(readings.commits, fanout.rounds_.reduce((t, r) => t + r.wallSec, 0)),
      dbCpuUsPerUpdate: readings.dbCpuUs === undefined ? null : readings.dbCpuUs / measuredUpdates,
    })
  }
  return setups
}

export function reportCluster(r: ClusterResult, log: (line?: string) => void): void {
  const { users, devicesPerUser, clipsPerDevice } = r.spec
  log(`Cluster (issue 14): ${users} users x ${devicesPerUser} devices x ${clipsPerDevice} new clips, light devices; ratios against LevelDB in this run`)
  if (r.skipped) {
    log(`   skipped: ${r.skipped}`)
    return
  }
  const base = r.setups.find((s) => s.setup === 'LevelDB')
  const row = (label: string, pick: (s: SetupResult) => number | null, digits = 0, withRatio = true) => {
    const cells = r.setups.map((s) => {
      const v = pick(s)
      const b = base ? pick(base) : null
      const text = v === null || Number.isNaN(v) ? '-' : fmt(v, digits)
      return withRatio && s !== base && v !== null && b !== null && b > 0 ? `${text} (${fmt(v / b, 2)}x)` : text
    })
    log(`   ${label.padEnd(44)} ${cells.map((c) => c.padStart(16)).join(' ')}`)
  }
  log(`   ${''.padEnd(44)} ${r.setups.map((s) => s.setup.padStart(16)).join(' ')}`)
  row('updates/s (median of rounds)', (s) => s.fanout.updatesPerSec)
  row('nodes CPU per update, µs', (s) => s.fanout.serverCpuUsPerUpdate)
  row('group commits per second', (s) => s.commit.perSec)
  row('updates per group commit', (s) => s.fanout.rounds_.reduce((n, x) => n + x.updates, 0) / s.commit.commits, 1, false)
  row('group commit: mean ms', (s) => s.commit.meanMs, 2)
  row('group commit: p50 / p99 bucket ms', (s) => s.commit.p50Ms, 1, false)
  row('   p99', (s) => s.commit.p99Ms, 1, false)
  row('PostgreSQL CPU per update, µs', (s) => s.dbCpuUsPerUpdate)
  row('load CPU %, sum of the load processes', (s) => s.fanout.loadCpuPct, 0, false)
  log(
    r.pinned
      ? '   Nodes pinned to CPU 0 (both nodes of the cluster on that one core), the load on CPU 1; PostgreSQL and Redis unpinned.'
      : '   UNPINNED (taskset could not pin): nodes, load, PostgreSQL and Redis share the cores.',
  )
  log('   Over the measured rounds only (devices connected): commit = superclip_commit_duration_seconds of every node (flush')
  log('   start to batch written; p50/p99: the upper bound of the bucket holding it); PostgreSQL CPU = every postgres process.')
}

export function logClusterChecks(r: ClusterResult, log: (line?: string) => void): void {
  if (r.skipped) {
    log(`   cluster: skipped (${r.skipped})`)
    return
  }
  for (const s of r.setups) {
    const problems = s.fanout.problems
    log(`   cluster ${s.setup}: ${s.fanout.loadBound ? 'FAIL: load-bound' : 'ok: load not saturated'}; ${problems.length === 0 ? 'no problems' : `problems: ${problems.slice(0, 3).join('; ')}`}`)
  }
}
