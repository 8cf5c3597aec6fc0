/**
 * The reconnect storm (issue 12, `BENCH_ONLY=reconnect`): 1,000 SDK clients
 * (`@superclip/sync-client`, 500 users × 2 devices, storage 'memory', each
 * user's document holding 20 clips) are synced to a server child process;
 * the server is restarted on the same port and data dir, and the run
 * measures until every client is `synced` again: the time from the restart
 * to all synced and each client's own, the new server's peak CPU (sampled
 * every 100 ms from /proc/<pid>/task/<tid>/schedstat) and its longest
 * event-loop block (`GET /admin/metrics`), and the connection attempts and
 * refusals (seen by the clients: `connecting` statuses not followed by
 * `syncing`, by cause).
 *
 * Four cases: a graceful restart (SIGTERM: the server's shutdown notice,
 * `retryAfterMs` 2–4 s, jittered by the server) and a crash (SIGKILL: no
 * notice, the clients' backoff alone: 500 ms doubling), each with the SDK's
 * backoff jitter on (its default) and off (`backoff: { jitter: false }`).
 *
 * The baseline of each case, measured just before it on the same server
 * process: the same 1,000 clients (new SyncClients with the case's backoff
 * setting, created beforehand with `autoConnect: false`) told to connect at
 * once to the freshly started server, documents not loaded yet: a storm of
 * connects with nothing in the way, no restart and no backoff. Its time, CPU and event-loop block are what a restart storm is
 * compared with. (Those clients fetch the 20 clips; after the restart they
 * already hold them and exchange only state vectors.)
 *
 * Clients run in LOAD_PROCS child processes (reconnect-worker.ts), round-robin
 * (a user's two devices in different processes). When taskset can pin, the
 * server runs on CPU 0 and the load processes share CPU 1, as in bench:peers.
 * The per-address handshake limit is lifted (every client is 127.0.0.1).
 */
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { signToken } from '../../src/services/token.service.js'
import { OURS_ENV } from '../bench-peers/servers.js'
import { freePort, REPO_ROOT } from '../lib/server-process.js'
import type { ClientRecord, ReconnectReply, ReconnectRequest } from './reconnect-worker.js'
import { BENCH_SECRET, machineCpu, makeTempDir, removeTempDir, startServer, type AdminMetrics, type ServerHandle } from './server.js'
import { fmt, percentile, sleep, table } from './stats.js'
import { canPin, CpuSampler, epochNow, LOAD_CPU, SATURATED_PCT, SERVER_CPU, WorkerProcess, type CpuSeries } from './workers.js'

export type RestartKind = 'graceful' | 'crash'

export interface ReconnectCase {
  restart: RestartKind
  jitter: boolean
}

export interface ReconnectSpec {
  users: number
  devicesPerUser: number
  clipsPerDevice: number
  loadProcs: number
  cases: ReconnectCase[]
  /** Longest wait for all clients to sync (open) or to sync again (storm). */
  timeoutMs: number
  /** Quiet time between the baseline and the restart. */
  settleMs: number
}

/** One storm of connects: the baseline (clients told to connect at once) or the restart. */
export interface StormMeasure {
  /** t0 (connect() on every client / restart signal) → the last client synced, ms. */
  allSyncedMs: number
  /** Per client, t0 → synced, ms. */
  p50Ms: number
  p99Ms: number
  /** Restart only: per client, its drop (status left `synced`) → synced again, ms. */
  reconnectP50Ms: number | null
  reconnectP99Ms: number | null
  /** Restart only: signal → the old server exited, → the new one listening (accepts TCP), → healthy (GET /health ok), ms. */
  exitMs: number | null
  upMs: number | null
  healthyMs: number | null
  /** The new server listening (baseline: t0) → the last client synced, ms. */
  afterUpMs: number
  /** The (new) server's CPU, from its spawn (baseline: t0) to the last sync, and from it listening (baseline: t0). */
  server: CpuSeries
  serverAfterUp: CpuSeries
  /**
   * The server's longest event-loop block over its life (baseline: since the
   * clients were told to connect): the larger of its two GET /admin/metrics windows,
   * spawn → healthy (reset then) and healthy → all synced; p99 of the second.
   */
  loopMaxMs: number
  loopP99Ms: number
  /** Restart only: the first window's (spawn → healthy, clients already arriving once it listens). */
  startupLoopMaxMs: number | null
  /** Connection attempts (a `connecting` status), of which connected (`syncing` followed). */
  attempts: number
  connected: number
  /** Refused attempts by cause: the server's code (SDK `error` events) or `network` (nothing listening). */
  refused: Record<string, number>
  /** The server's handshake refusal counters since its start (RATE_LIMITED). */
  serverRefusedRateLimited: number
  /** Most attempts started in any 100 ms, and the time over which the middle 90% of the connects happened, ms. */
  peakAttemptsPer100ms: number
  connectSpreadMs: number
  /** Synced clients per 500 ms from t0 (how the storm arrives), until the last. */
  syncedPer500ms: number[]
  /** The load processes: summed (they share one core when pinned) and each. */
  load: CpuSeries
  loadProcs: CpuSeries[]
  /**
   * Time the load (pinned: the load core, all load processes summed;
   * unpinned: the load process for which it is longest) was saturated while
   * the server was not (restart: from the server listening on), ms: when the
   * clients, not the server, set the pace.
   */
  loadAloneMs: number
  /** loadAloneMs is LOAD_BOUND_SHARE or more of the window (listening → all synced). */
  loadBound: boolean
  /**
   * CPU of everything else on the machine over the window (/proc/stat busy
   * time minus the servers, the load processes and the bench process), and
   * the hypervisor's steal, % of one core; null if unreadable.
   */
  otherCpuPct: number | null
  stealPct: number | null
  /** Clients not synced at the end, and clients that dropped again after syncing. */
  stuck: number
  stuckSample: ClientRecord['stuck']
  flapping: number
  clients: number
}

export interface ReconnectCaseResult extends ReconnectCase {
  name: string
  baseline: StormMeasure
  storm: StormMeasure
  /** Storm ÷ baseline: time from the server up to all synced, server CPU time, longest block. */
  ratio: { afterUp: number; serverCpu: number; loopMax: number }
  /** After the storm, clients that did not hold their user's clips with nothing pending. */
  shortAfter: number
  /** Spawn → healthy of the baseline's server (no clients waiting), and of the restarted one (exit → healthy), ms. */
  coldStartMs: number
  restartStartMs: number
}

export interface ReconnectResult {
  spec: ReconnectSpec
  pinned: boolean
  populateSec: number
  cases: ReconnectCaseResult[]
  wallSec: number
}

/** A storm is load-bound when the load was saturated, and the server not, for this share of it (listening → all synced). */
export const LOAD_BOUND_SHARE = 0.1

const WORKER_SCRIPT = path.join(REPO_ROOT, 'scripts/bench/reconnect-worker.ts')

type Worker = WorkerProcess<ReconnectRequest, ReconnectReply>

/** BENCH_LOAD_NODE_ARGS: node flags for the load processes, e.g. `--cpu-prof --cpu-prof-dir=.bench/prof`. */
export const loadNodeArgs = (): string[] => (process.env.BENCH_LOAD_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)

async function ask<T extends ReconnectReply['type']>(w: Worker, req: ReconnectRequest, want: T): Promise<Extract<ReconnectReply, { type: T }>> {
  const reply = await w.request(req)
  if (reply.type !== want) throw new Error(`${w.name}: expected ${want}, got ${reply.type}`)
  return reply as Extract<ReconnectReply, { type: T }>
}

/**
 * Resolves with epochNow() once a TCP connection to 127.0.0.1:`port` is
 * accepted (the kernel accepts once the server listens, whatever its event
 * loop is doing), trying every 5 ms; null after `ms`.
 */
async function whenListening(port: number, ms: number): Promise<number | null> {
  const deadline = performance.now() + ms
  while (performance.now() < deadline) {
    const at = await new Promise<number | null>((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port })
      socket.once('connect', () => {
        const now = epochNow()
        socket.destroy()
        resolve(now)
      })
      socket.once('error', () => resolve(null))
    })
    if (at !== null) return at
    await sleep(5)
  }
  return null
}

const caseName = (c: ReconnectCase) => `${c.restart === 'graceful' ? 'graceful (SIGTERM)' : 'crash (SIGKILL)'}, jitter ${c.jitter ? 'on' : 'off'}`

/** Sums the workers' records into one storm measure. */
function measure(
  records: ClientRecord[],
  t0: number,
  tUp: number,
  cpu: Record<string, CpuSeries>,
  loadNames: string[],
  loadAloneMs: number,
  machine: { otherPct: number | null; stealPct: number | null },
  metrics: AdminMetrics,
  startup: AdminMetrics | null,
  times: { exitMs: number | null; upMs: number | null; healthyMs: number | null },
): StormMeasure {
  const synced = records.flatMap((r) => r.syncedAt)
  const dropped = records.flatMap((r) => r.droppedAt)
  const done = synced.filter((v): v is number => v !== null)
  const sinceT0 = done.map((v) => v - t0)
  const reconnect = synced.flatMap((s, i) => {
    const d = dropped[i]
    return s !== null && d !== null && d !== undefined ? [s - d] : []
  })
  const last = done.length > 0 ? Math.max(...done) : Number.NaN
  const attemptAt = records.flatMap((r) => r.attemptAt)
  const connectedAt = records.flatMap((r) => r.connectedAt)
  const errors: Record<string, number> = {}
  for (const r of records) for (const [code, n] of Object.entries(r.errors)) errors[code] = (errors[code] ?? 0) + n
  const refusedTotal = attemptAt.length - connectedAt.length
  const byServer = (errors.UNAVAILABLE ?? 0) + (errors.RATE_LIMITED ?? 0) + (errors.QUOTA_EXCEEDED ?? 0)
  const refused: Record<string, number> = {}
  for (const code of ['UNAVAILABLE', 'RATE_LIMITED', 'QUOTA_EXCEEDED']) if (errors[code]) refused[code] = errors[code]
  if (refusedTotal - byServer > 0) refused.network = refusedTotal - byServer
  const buckets = new Map<number, number>()
  for (const at of attemptAt) {
    const b = Math.floor((at - t0) / 100)
    buckets.set(b, (buckets.get(b) ?? 0) + 1)
  }
  const perHalf: number[] = []
  for (const at of sinceT0) {
    const b = Math.max(0, Math.floor(at / 500))
    while (perHalf.length <= b) perHalf.push(0)
    perHalf[b] = (perHalf[b] ?? 0) + 1
  }
  const load = cpu.load ?? { peakPct: Number.NaN, totalUs: 0, meanPct: Number.NaN, saturatedMs: 0 }
  const loadProcs = loadNames.map((n) => cpu[n] ?? { peakPct: Number.NaN, totalUs: 0, meanPct: Number.NaN, saturatedMs: 0 })
  const stuckSample = records.flatMap((r) => r.stuck)
  return {
    allSyncedMs: last - t0,
    p50Ms: percentile(sinceT0, 50),
    p99Ms: percentile(sinceT0, 99),
    reconnectP50Ms: times.upMs === null ? null : percentile(reconnect, 50),
    reconnectP99Ms: times.upMs === null ? null : percentile(reconnect, 99),
    exitMs: times.exitMs,
    upMs: times.upMs,
    healthyMs: times.healthyMs,
    afterUpMs: last - tUp,
    server: cpu.server ?? { peakPct: Number.NaN, totalUs: 0, meanPct: Number.NaN, saturatedMs: 0 },
    serverAfterUp: cpu.serverUp ?? cpu.server ?? { peakPct: Number.NaN, totalUs: 0, meanPct: Number.NaN, saturatedMs: 0 },
    loopMaxMs: Math.max(metrics.eventLoopDelayMs.maxMs, startup?.eventLoopDelayMs.maxMs ?? 0),
    loopP99Ms: metrics.eventLoopDelayMs.p99Ms,
    startupLoopMaxMs: startup ? startup.eventLoopDelayMs.maxMs : null,
    attempts: attemptAt.length,
    connected: connectedAt.length,
    refused,
    serverRefusedRateLimited: metrics.refusals.connectionsRefused,
    peakAttemptsPer100ms: Math.max(0, ...buckets.values()),
    connectSpreadMs: percentile(connectedAt, 95) - percentile(connectedAt, 5),
    syncedPer500ms: perHalf,
    load,
    loadProcs,
    loadAloneMs,
    otherCpuPct: machine.otherPct,
    stealPct: machine.stealPct,
    loadBound: loadAloneMs >= LOAD_BOUND_SHARE * (last - tUp),
    stuck: synced.length - done.length,
    stuckSample: stuckSample.slice(0, 5),
    flapping: records.reduce((n, r) => n + r.flapping, 0),
    clients: synced.length,
  }
}

/**
 * Machine-wide CPU from now to `end(cpu)`: busy time minus what `cpu` says the
 * servers (`server`, `oldServer`) and the load (`load`) used, minus this
 * process; and the steal. % of one core.
 */
async function machineWindow(): Promise<{ end: (cpu: Record<string, CpuSeries>) => Promise<{ otherPct: number | null; stealPct: number | null }> }> {
  const m0 = await machineCpu()
  const self0 = process.cpuUsage()
  const t0 = performance.now()
  return {
    async end(cpu) {
      const m1 = await machineCpu()
      const self = process.cpuUsage(self0)
      const wallUs = (performance.now() - t0) * 1000
      if (!m0 || !m1) return { otherPct: null, stealPct: null }
      const ours = (cpu.server?.totalUs ?? 0) + (cpu.oldServer?.totalUs ?? 0) + (cpu.load?.totalUs ?? 0) + self.user + self.system
      // Clamped at 0: /proc/stat counts in 10 ms ticks.
      return { otherPct: Math.max(0, ((m1.busyUs - m0.busyUs - ours) / wallUs) * 100), stealPct: ((m1.stealUs - m0.stealUs) / wallUs) * 100 }
    },
  }
}

function startSampler(workers: Worker[], server: number | null): CpuSampler {
  const sampler = new CpuSampler(100)
  sampler.track(
    'load',
    workers.map((w) => w.pid),
  )
  for (const [i, w] of workers.entries()) sampler.track(`load${i}`, [w.pid])
  if (server !== null) sampler.track('server', [server])
  sampler.start()
  return sampler
}

export async function runReconnect(spec: ReconnectSpec, progress: (line: string) => void = () => {}): Promise<ReconnectResult> {
  const started = performance.now()
  const pinned = canPin(os.cpus().length)
  const serverCpus = pinned ? SERVER_CPU : undefined
  const dir = await makeTempDir('superclip-bench-reconnect-')
  const port = await freePort()
  const start = (onSpawn?: (pid: number) => void) => startServer(dir, OURS_ENV, { port, cpus: serverCpus, onSpawn })
  const workers: Worker[] = []
  let server: ServerHandle | undefined
  try {
    for (let i = 0; i < spec.loadProcs; i++) {
      workers.push(
        await WorkerProcess.start<ReconnectRequest, ReconnectReply>(`reconnect load ${i}`, WORKER_SCRIPT, { cpus: pinned ? LOAD_CPU : undefined, nodeArgs: loadNodeArgs() }),
      )
    }
    const ids: { userId: string; deviceId: string; token: string }[] = []
    for (let u = 0; u < spec.users; u++) {
      const userId = `storm-u${u}`
      const token = await signToken(BENCH_SECRET, { userId, plan: 'pro' })
      for (let d = 0; d < spec.devicesPerUser; d++) ids.push({ userId, deviceId: `${userId}-d${d}`, token })
    }
    // Pinned, the load processes share one core: their sum is what saturates; unpinned, the busiest one alone.
    const loadAlone = (sampler: CpuSampler, server: string) =>
      pinned ? sampler.saturatedAloneMs('load', server) : Math.max(...workers.map((_, i) => sampler.saturatedAloneMs(`load${i}`, server)))
    const shares = workers.map((_, i) => ids.filter((_, j) => j % workers.length === i))
    const expected = spec.devicesPerUser * spec.clipsPerDevice
    const createAll = (url: string, jitter: boolean) =>
      Promise.all(workers.map((w, i) => ask(w, { type: 'create', url, clients: shares[i] ?? [], jitter }, 'created')))
    const openAll = () => Promise.all(workers.map((w) => ask(w, { type: 'open', timeoutMs: spec.timeoutMs }, 'opened')))
    const closeAll = () => Promise.all(workers.map((w) => ask(w, { type: 'close' }, 'closed')))

    // The documents: every device adds its clips, all synced, then closed.
    progress(`reconnect: populating ${spec.users} users x ${spec.devicesPerUser} devices x ${spec.clipsPerDevice} clips ...`)
    const p0 = performance.now()
    server = await start()
    await createAll(server.url, true)
    const opened = await openAll()
    const notOpened = opened.reduce((n, o) => n + o.record.syncedAt.filter((s) => s === null).length, 0)
    if (notOpened > 0) throw new Error(`populate: ${notOpened} clients did not sync: ${JSON.stringify(opened.flatMap((o) => o.record.stuck).slice(0, 3))}`)
    const populated = await Promise.all(workers.map((w) => ask(w, { type: 'populate', clipsPerDevice: spec.clipsPerDevice, expected, timeoutMs: spec.timeoutMs }, 'populated')))
    const short = populated.reduce((n, p) => n + p.short, 0)
    if (short > 0) throw new Error(`populate: ${short} clients do not hold all ${expected} clips of their user`)
    await closeAll()
    await server.stop()
    server = undefined
    const populateSec = (performance.now() - p0) / 1000

    const cases: ReconnectCaseResult[] = []
    for (const c of spec.cases) {
      const name = caseName(c)
      // Baseline: a cold server (documents on disk only), every client connecting at once.
      progress(`reconnect: ${name}: baseline, ${ids.length} clients connecting at once to a fresh server ...`)
      server = await start()
      const live: ServerHandle = server
      await createAll(live.url, c.jitter)
      await live.metrics(true)
      const bSampler = startSampler(workers, live.pid)
      const bMachine = await machineWindow()
      const b0 = epochNow()
      const bRecords = (await openAll()).map((o) => o.record)
      const bMetrics = await live.metrics(false)
      const bCpu = bSampler.stop()
      const bLoadAlone = loadAlone(bSampler, 'server')
      const bOther = await bMachine.end(bCpu)
      const baseline = measure(bRecords, b0, b0, bCpu, workers.map((_, i) => `load${i}`), bLoadAlone, bOther, bMetrics, null, { exitMs: null, upMs: null, healthyMs: null })
      if (baseline.stuck > 0) throw new Error(`${name}: baseline: ${baseline.stuck} clients did not sync: ${JSON.stringify(baseline.stuckSample)}`)
      await sleep(spec.settleMs)

      progress(`reconnect: ${name}: restarting the server under ${ids.length} synced clients ...`)
      await Promise.all(workers.map((w) => ask(w, { type: 'arm' }, 'armed')))
      const sampler = startSampler(workers, null)
      sampler.track('oldServer', [live.pid])
      const machine = await machineWindow()
      const t0 = epochNow()
      process.kill(live.pid, c.restart === 'graceful' ? 'SIGTERM' : 'SIGKILL')
      await live.stop() // waits for the exit (a second SIGTERM is ignored by a server already stopping)
      server = undefined
      const tExit = epochNow()
      let listening: Promise<number | null> = Promise.resolve(null)
      const next = await start((pid) => {
        sampler.addPid('server', pid)
        listening = whenListening(port, 30_000).then((at) => {
          // The server's CPU from here on, start-up excluded.
          sampler.sample()
          sampler.track('serverUp', [pid])
          return at
        })
      })
      server = next
      const tHealthy = epochNow()
      const tUp = (await listening) ?? tHealthy
      const startup = await next.metrics(true)
      const records = (await Promise.all(workers.map((w) => ask(w, { type: 'wait', timeoutMs: spec.timeoutMs }, 'waited')))).map((w) => w.record)
      const metrics = await next.metrics(false)
      const cpu = sampler.stop()
      const other = await machine.end(cpu)
      const storm = measure(records, t0, tUp, cpu, workers.map((_, i) => `load${i}`), loadAlone(sampler, 'serverUp'), other, metrics, startup, { exitMs: tExit - t0, upMs: tUp - t0, healthyMs: tHealthy - t0 })
      const after = await Promise.all(workers.map((w) => ask(w, { type: 'populate', clipsPerDevice: 0, expected, timeoutMs: 10_000 }, 'populated')))
      await closeAll()
      await next.stop()
      server = undefined
      cases.push({
        ...c,
        name,
        baseline,
        storm,
        ratio: {
          afterUp: storm.afterUpMs / baseline.allSyncedMs,
          serverCpu: storm.serverAfterUp.totalUs / baseline.server.totalUs,
          loopMax: storm.loopMaxMs / baseline.loopMaxMs,
        },
        shortAfter: after.reduce((n, p) => n + p.short, 0),
        coldStartMs: live.startMs,
        restartStartMs: next.startMs,
      })
    }
    return { spec, pinned, populateSec, cases, wallSec: (performance.now() - started) / 1000 }
  } finally {
    await server?.stop()
    await Promise.all(workers.map((w) => w.stop()))
    await removeTempDir(dir)
  }
}

// ---- report ----

const sec = (v: number) => fmt(v / 1000, 2)
const codes = (r: Record<string, number>) =>
  Object.keys(r).length === 0
    ? '0'
    : Object.entries(r)
        .map(([k, n]) => `${fmt(n)} ${k === 'network' ? 'net' : k === 'UNAVAILABLE' ? 'unavail' : k === 'RATE_LIMITED' ? 'rate' : k}`)
        .join(' + ')
const loadText = (m: StormMeasure) =>
  `${fmt(m.load.meanPct)} / ${fmt(m.load.peakPct)} / ${fmt(m.loadAloneMs / 1000, 1)}${m.loadBound ? ' LOAD-BOUND' : ''}`

export function reportReconnect(r: ReconnectResult, log: (line?: string) => void): void {
  const s = r.spec
  log(
    `10. Reconnect storm (issue 12): ${fmt(s.users * s.devicesPerUser)} SDK clients (${fmt(s.users)} users x ${s.devicesPerUser} devices, storage 'memory',` +
      ` ${fmt(s.devicesPerUser * s.clipsPerDevice)} clips per document) in ${s.loadProcs} load processes; the server restarted on the same port and data dir`,
  )
  log(
    `   ${r.pinned ? `Server on CPU ${SERVER_CPU}, the load processes together on CPU ${LOAD_CPU} (taskset).` : 'UNPINNED: server and load processes share the cores.'}` +
      ' Per-address handshake limit lifted. Baseline (same server process, just before): the same clients connecting at once to it, cold.',
  )
  log(
    table(
      ['case', 'run', 'all synced s', 'client p50 s', 'client p99 s', 'reconn p50/p99 s', 'exit/listen/healthy s', 'listen→all s', 'srv CPU peak%', 'srv CPU s', 'srv sat. s', 'loop max ms', 'load CPU% mean/peak, sat. alone s', 'other/steal %'],
      r.cases.flatMap((c) => [
        [
          c.name,
          'baseline',
          sec(c.baseline.allSyncedMs),
          sec(c.baseline.p50Ms),
          sec(c.baseline.p99Ms),
          '-',
          '-',
          sec(c.baseline.afterUpMs),
          fmt(c.baseline.server.peakPct),
          fmt(c.baseline.server.totalUs / 1e6, 2),
          fmt(c.baseline.server.saturatedMs / 1000, 1),
          fmt(c.baseline.loopMaxMs, 1),
          loadText(c.baseline),
          `${fmt(c.baseline.otherCpuPct)} / ${fmt(c.baseline.stealPct)}`,
        ],
        [
          c.name,
          'restart',
          sec(c.storm.allSyncedMs),
          sec(c.storm.p50Ms),
          sec(c.storm.p99Ms),
          `${sec(c.storm.reconnectP50Ms ?? Number.NaN)} / ${sec(c.storm.reconnectP99Ms ?? Number.NaN)}`,
          `${sec(c.storm.exitMs ?? Number.NaN)} / ${sec(c.storm.upMs ?? Number.NaN)} / ${sec(c.storm.healthyMs ?? Number.NaN)}`,
          sec(c.storm.afterUpMs),
          fmt(c.storm.server.peakPct),
          `${fmt(c.storm.server.totalUs / 1e6, 2)} (${fmt(c.storm.serverAfterUp.totalUs / 1e6, 2)})`,
          fmt(c.storm.server.saturatedMs / 1000, 1),
          fmt(c.storm.loopMaxMs, 1),
          loadText(c.storm),
          `${fmt(c.storm.otherCpuPct)} / ${fmt(c.storm.stealPct)}`,
        ],
      ]),
    ),
  )
  log(
    '   all synced = t0 → the last client synced (baseline t0: connect() on every client; restart t0: the signal); client p50/p99 = each client\'s own t0 → synced;',
  )
  log("   reconn = each client's drop (status left synced) → synced again. exit/listen/healthy = signal → old server exited, → new one")
  log('   accepts TCP, → its GET /health answers. listen→all = new server listening → last client synced (baseline: = all synced).')
  log('   srv CPU = the (new) server process from its spawn (in brackets: from listening), CPU time of its threads sampled every 100 ms')
  log(`   (/proc/<pid>/task/*/schedstat): peak = busiest 100 ms, % of one core (a running thread's count can lag by a scheduler tick, so a`)
  log(`   saturated core reads up to ~110%); sat. = time at ≥ ${SATURATED_PCT}%. loop max = the server's`)
  log('   longest event-loop block (GET /admin/metrics; restart: over the new server\'s life, baseline: since connect() on the clients).')
  log(`   load CPU = the ${s.loadProcs} load processes summed${r.pinned ? ' (one core)' : ''}, % of one core: mean over the window / busiest 100 ms / time saturated`)
  log(`   (≥ ${SATURATED_PCT}%) while the server was not (restart: from listening). LOAD-BOUND: that time is ${LOAD_BOUND_SHARE * 100}% or more of listen→all.`)
  log('   other/steal = CPU of every other process on the machine (/proc/stat busy minus servers, load and bench) / hypervisor steal, % of a core.')
  log()
  log('   Attempts and refusals (restart rows; baseline: attempts = clients, none refused)')
  log(
    table(
      ['case', 'srv start s cold/restart', 'attempts', 'connected', 'refused (cause)', 'peak attempts/100 ms', 'middle 90% of connects s', 'synced per 500 ms from t0', 'stuck', 'dropped again'],
      r.cases.map((c) => [
        c.name,
        `${sec(c.coldStartMs)} / ${sec(c.restartStartMs)}`,
        fmt(c.storm.attempts),
        fmt(c.storm.connected),
        codes(c.storm.refused),
        fmt(c.storm.peakAttemptsPer100ms),
        fmt(c.storm.connectSpreadMs / 1000, 2),
        c.storm.syncedPer500ms.map((n) => (n === 0 ? '.' : String(n))).join(' '),
        fmt(c.storm.stuck),
        fmt(c.storm.flapping),
      ]),
    ),
  )
  log('   srv start = spawn → healthy: the baseline\'s server (no client waiting) / the restarted one (clients arriving once it listens).')
  log('   refused: net = nothing listening (the server down), unavail = refused by the stopping server (UNAVAILABLE), rate = RATE_LIMITED.')
  log('   synced per 500 ms: how many clients became synced again in each half second after the signal (. = none).')
  log()
  log('   Restart ÷ baseline, same case: (new server listening → all synced) ÷ (baseline all synced); server CPU s from listening; longest block')
  log(
    table(
      ['case', 'listen→all synced', 'server CPU', 'loop max', 'baseline CPU/client ms', 'restart CPU/client ms'],
      r.cases.map((c) => [
        c.name,
        `${fmt(c.ratio.afterUp, 2)}x`,
        `${fmt(c.ratio.serverCpu, 2)}x`,
        `${fmt(c.ratio.loopMax, 2)}x`,
        fmt(c.baseline.server.totalUs / 1000 / c.baseline.clients, 2),
        fmt(c.storm.serverAfterUp.totalUs / 1000 / c.storm.clients, 2),
      ]),
    ),
  )
  log("   CPU per client: the server process's CPU over the window (restart: from listening, start-up excluded) ÷ clients.")
  log()
}

export function logReconnectChecks(r: ReconnectResult, log: (line?: string) => void): void {
  for (const c of r.cases) {
    const problems = [
      c.storm.stuck > 0 ? `${c.storm.stuck} clients not synced ${r.spec.timeoutMs / 1000} s after the restart (e.g. ${JSON.stringify(c.storm.stuckSample)})` : '',
      c.shortAfter > 0 ? `${c.shortAfter} clients without all their clips after the storm` : '',
      c.storm.flapping > 0 ? `${c.storm.flapping} clients dropped again after syncing` : '',
      c.storm.loadBound ? `load-bound in the restart (load saturated alone ${fmt(c.storm.loadAloneMs / 1000, 2)} s)` : '',
      c.baseline.loadBound ? `load-bound in the baseline (load saturated alone ${fmt(c.baseline.loadAloneMs / 1000, 2)} s)` : '',
    ].filter(Boolean)
    log(`   reconnect, ${c.name}: ${problems.length === 0 ? `ok: all ${fmt(c.storm.clients)} clients synced again, each with all its clips` : problems.join('; ')}`)
  }
}
