/**
 * `npm run bench`: throughput, latency and initial-sync figures of the sync
 * server on this machine, next to the raw limits of its two building blocks
 * (Y.applyUpdate and synced LevelDB batches), measured in the same run.
 *
 * The server runs in a child process (`node dist/index.js`, built first, default
 * settings, so SYNC_WRITES=true) with a fresh data dir per scenario; the
 * clients are real socket.io-client sockets (websocket transport) with real
 * Y.Docs, in this process. Prints a table, then one JSON line with every
 * number. Not a test: only sanity checks, reported under "Checks".
 *
 * Beside the Yjs path it measures the JSON path (protocol §5) in the
 * same run: change records applied per second against Yjs updates of the same
 * clips on the same server, a JSON device's full change-log sync of the
 * initial-sync document next to the Yjs sync of it, and, in-process, what
 * conflict detection and indexing add to Y.applyUpdate on the Yjs path.
 *
 * The flood run (issue 4) puts one abusive socket, in a child process, beside
 * 100 paced normal devices and reports their ack latency without, with and
 * after the abuser, and the server's longest event-loop block in each phase.
 * Then one device grows one document past COMPACT_MAX_BYTES (bench/growth.ts).
 *
 * Issue 12: the reconnect storm (bench/reconnect.ts: 1,000 SDK clients in 4
 * child processes, the server restarted under them, gracefully and by a crash,
 * with the SDK's backoff jitter on and off, each against a baseline of the
 * same clients connecting at once to a fresh server) and the SDK's CPU per
 * edit sent and received against y-websocket's WebsocketProvider
 * (bench/sdk-cost.ts; installs y-websocket into .bench/peers as bench:peers
 * does). Both pin the server to CPU 0 and their client processes to CPU 1
 * when taskset can.
 *
 * Progress goes to stderr. BENCH_SERVER_NODE_ARGS adds node flags to the
 * server (e.g. `--cpu-prof --cpu-prof-dir=.bench/prof` to profile it).
 * Issue 14: bench:peers' 100 users x 2 devices workload on LevelDB, on
 * PostgreSQL, and on two cluster nodes (PostgreSQL + Redis), bench/cluster.ts;
 * skipped, saying why, without a reachable PostgreSQL and Redis.
 *
 * BENCH_ONLY=flood, =growth, =operators, =reconnect, =sdk or =cluster runs that part alone;
 * BENCH_LOAD_NODE_ARGS adds node flags to the reconnect storm's load processes.
 * The flood part runs three times: a free abuser, a pro abuser and a pro
 * device importing 20,000 clips at its plan's rate (BENCH_FLOOD_VARIANTS=free,pro,import
 * picks some); BENCH_FLOOD_ABUSER_CLIENTS=one
 * makes an abuser send every update from one Y.Doc (default: each under a new client
 * id, so that each is valid whatever was refused before). A variant whose
 * normal devices' ack p50 or p99 with the abuser is over twice the one
 * without, or whose server blocked 50 ms or more, fails the run (exit 1).
 */
import { createRequire } from 'node:module'
import os from 'node:os'
import {
  changeLogProbe,
  runChangeRates,
  type ChangeLogSample,
  type ChangeLogSyncResult,
  type ChangeRateResult,
  type ChangeRateSpec,
  type PathRate,
} from './bench/changes.js'
import { PLANS } from '../src/models/plans.js'
import { runFloods, type FloodPhase, type FloodResult, type FloodSpec } from './bench/flood.js'
import { LOAD_CPU, SERVER_CPU } from './bench-peers/servers.js'
import { runOperators, type OperatorsResult, type OperatorsSpec } from './bench/operators.js'
import { runGrowth, type GrowthResult, type GrowthSpec } from './bench/growth.js'
import { logReconnectChecks, reportReconnect, runReconnect, type ReconnectSpec } from './bench/reconnect.js'
import { logSdkCostChecks, reportSdkCost, runSdkCost, type SdkCostSpec } from './bench/sdk-cost.js'
import { logClusterChecks, reportCluster, runCluster, type ClusterSpec } from './bench/cluster.js'
import { loadCpuTotal } from './bench/workers.js'
import { measureApply, measureLevel, type LevelLimits } from './bench/raw.js'
import {
  runInitialSync,
  runLatency,
  runThroughput,
  type InitialSyncResult,
  type SyncSample,
  type ThroughputResult,
  type ThroughputSpec,
} from './bench/scenarios.js'
import { cleanupSync, machineCpu, runBench, serverCpuTotal } from './bench/server.js'
import { buildServer } from './lib/server-process.js'
import { fmt, mean, round, rounded, table } from './bench/stats.js'
import { measureYjsPath, type PathRates, type YjsPathResult } from './bench/yjs-path.js'

/** The whole run is aborted (children killed, temp dirs removed) past this. */
const WATCHDOG_MS = 8 * 60_000

const THROUGHPUT: ThroughputSpec[] = [
  { name: '1 user x 1 device', users: 1, devicesPerUser: 1, window: 1, updatesPerDevice: 2000, warmupPerDevice: 200, timeLimitMs: 8000 },
  { name: '1 user x 1 device', users: 1, devicesPerUser: 1, window: 8, updatesPerDevice: 4000, warmupPerDevice: 400, timeLimitMs: 8000 },
  { name: '1 user x 10 devices', users: 1, devicesPerUser: 10, window: 8, updatesPerDevice: 300, warmupPerDevice: 30, timeLimitMs: 10_000 },
  { name: '1 user x 100 devices', users: 1, devicesPerUser: 100, window: 8, updatesPerDevice: 30, warmupPerDevice: 3, timeLimitMs: 25_000 },
  { name: '100 users x 2 devices', users: 100, devicesPerUser: 2, window: 8, updatesPerDevice: 40, warmupPerDevice: 4, timeLimitMs: 10_000 },
  // Control: clients that do not offer permessage-deflate. Equal to the row above unless small frames get compressed.
  { name: '1 user x 10 devices, no deflate', users: 1, devicesPerUser: 10, window: 8, updatesPerDevice: 300, warmupPerDevice: 30, timeLimitMs: 10_000, deflate: false },
]
const LATENCY_UPDATES = 1000
const SYNC_CLIPS = 10_000
const SYNC_CHUNK = 1000
const SYNC_WARM_REPS = 7
const SYNC_COLD_REPS = 3
/** JSON devices creating clips with change records, against Yjs devices creating the same clips, same server. */
const CHANGE_RATES: ChangeRateSpec[] = [
  { name: '1 user x 1 device', devices: 1, window: 8, changesPerDevice: 4000, warmupPerDevice: 300, timeLimitMs: 8000 },
  { name: '1 user x 10 devices', devices: 10, window: 8, changesPerDevice: 400, warmupPerDevice: 30, timeLimitMs: 8000 },
]
/** Page sizes of the full change-log sync of the initial-sync document (null: the server's default, 500). */
const CHANGE_LOG_LIMITS = [5000, null]
const CHANGE_LOG_WARM_REPS = 5
/** Page sizes also measured right after a restart (one restart, one sync each). */
const CHANGE_LOG_COLD_LIMITS = [5000]
/** The flood runs: 100 paced devices beside one abuser (free, then pro), then beside one device importing 20,000 clips. */
const FLOOD_BASE = {
  users: 50,
  devicesPerUser: 2,
  periodMs: 100,
  warmupMs: 5000,
  phaseMs: 6000,
  abuserWindow: 1000,
  importClips: 20_000,
  abuserClients: process.env.BENCH_FLOOD_ABUSER_CLIENTS === 'one' ? ('one' as const) : ('new' as const),
}
const FLOOD_VARIANTS: Record<string, FloodSpec> = {
  free: { ...FLOOD_BASE, name: 'free abuser', mode: 'flood', abuserPlan: 'free' },
  pro: { ...FLOOD_BASE, name: 'pro abuser', mode: 'flood', abuserPlan: 'pro' },
  import: { ...FLOOD_BASE, name: 'pro import of 20,000 clips', mode: 'import', abuserPlan: 'pro', abuserClients: 'one' },
}
const FLOODS: FloodSpec[] = (process.env.BENCH_FLOOD_VARIANTS ?? 'free,pro,import').split(',').map((v) => {
  const spec = FLOOD_VARIANTS[v.trim()]
  if (!spec) throw new Error(`BENCH_FLOOD_VARIANTS: ${v}: expected some of ${Object.keys(FLOOD_VARIANTS).join(', ')}`)
  return spec
})
/** The most a flood variant may multiply the normal devices' ack p50 and p99, and the server's longest block, ms (issue 15). */
const FLOOD_MAX_RATIO = 2
const FLOOD_MAX_BLOCK_MS = 50
/** A document growing to 8 MB of state, twice COMPACT_MAX_BYTES (part 8). */
const GROWTH: GrowthSpec = { segments: 8, updatesPerSegment: 1000, clipBytes: 1000, window: 8 }

/** Snapshots and restores of a 10,000-clip and an 8 MB document; throughput with snapshots every second (part 9). */
const OPERATORS: OperatorsSpec = {
  clips: 10_000,
  bigClips: 8000,
  bigClipBytes: 1000,
  editedClips: 100,
  throughput: { name: '100 users x 2 devices', users: 100, devicesPerUser: 2, window: 8, updatesPerDevice: 40, warmupPerDevice: 4, timeLimitMs: 10_000 },
  rounds: 3,
}

/**
 * The reconnect storm (part 10): 500 users x 2 SDK devices (20 clips per document) in 4 load processes; the server
 * restarted gracefully and by a crash, with the SDK's backoff jitter on and off.
 */
const RECONNECT: ReconnectSpec = {
  users: 500,
  devicesPerUser: 2,
  clipsPerDevice: 10,
  loadProcs: 4,
  cases: [
    { restart: 'graceful', jitter: true },
    { restart: 'graceful', jitter: false },
    { restart: 'crash', jitter: true },
    { restart: 'crash', jitter: false },
  ],
  timeoutMs: 60_000,
  settleMs: 1000,
}

/** Client CPU per edit, our SDK against y-websocket's WebsocketProvider (part 11). */
/** Issue 14: bench:peers' 100 x 2 workload on LevelDB, PostgreSQL and two nodes (bench/cluster.ts). */
const CLUSTER: ClusterSpec = { users: 100, devicesPerUser: 2, clipsPerDevice: 10, rounds: 5, warmupRounds: 1, settle: false }
const SDK_COST: SdkCostSpec = { edits: { paced: 2000, burst: 5000 }, warmup: 500, warmupRounds: 1, pacedPerSec: 500, rounds: 3, modes: ['paced', 'burst'] }

/** Parts of the run that BENCH_ONLY may name, each run alone with its report and checks. */
const SINGLE_PARTS: Record<string, () => Promise<{ result: unknown; report: () => void; checks: () => void }>> = {
  async flood() {
    const floods = await runFloods(FLOODS, progress)
    return { result: floods, report: () => floods.forEach(reportFlood), checks: () => floods.forEach(logFloodChecks) }
  },
  async growth() {
    const g = await runGrowth(GROWTH, progress)
    return { result: g, report: () => reportGrowth(g), checks: () => logGrowthChecks(g) }
  },
  async operators() {
    const o = await runOperators(OPERATORS, progress)
    return { result: o, report: () => reportOperators(o), checks: () => logOperatorsChecks(o) }
  },
  async reconnect() {
    const r = await runReconnect(RECONNECT, progress)
    return { result: r, report: () => reportReconnect(r, log), checks: () => logReconnectChecks(r, log) }
  },
  async sdk() {
    const r = await runSdkCost(SDK_COST, progress)
    return { result: r, report: () => reportSdkCost(r, log), checks: () => logSdkCostChecks(r, log) }
  },
  async cluster() {
    const r = await runCluster(CLUSTER, progress)
    return { result: r, report: () => reportCluster(r, log), checks: () => logClusterChecks(r, log) }
  },
}

const log = (line = '') => process.stdout.write(`${line}\n`)
const progress = (line: string) => process.stderr.write(`[bench] ${line}\n`)

function versionOf(pkg: string): string {
  try {
    const json = createRequire(import.meta.url)(`${pkg}/package.json`) as { version?: unknown }
    return typeof json.version === 'string' ? json.version : '?'
  } catch {
    return '?'
  }
}

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY
  const single = only === undefined ? undefined : SINGLE_PARTS[only]
  if (only !== undefined && !single) throw new Error(`BENCH_ONLY=${only}: expected one of ${Object.keys(SINGLE_PARTS).join(', ')}`)
  const started = performance.now()
  const watchdog = setTimeout(() => {
    process.stderr.write(`[bench] aborted: over ${WATCHDOG_MS / 1000} s\n`)
    cleanupSync()
    process.exit(2)
  }, WATCHDOG_MS)
  watchdog.unref()

  const machine = {
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '?',
    memGiB: round(os.totalmem() / 2 ** 30, 1),
    platform: `${os.type()} ${os.release()}`,
    tmpdir: os.tmpdir(),
    yjs: versionOf('yjs'),
    socketIo: versionOf('socket.io'),
    level: versionOf('level'),
  }

  // Wall time of each part of the run, s.
  const partSec: Record<string, number> = {}
  let lapAt = performance.now()
  const lap = (part: string) => {
    const now = performance.now()
    partSec[part] = (now - lapAt) / 1000
    lapAt = now
  }

  // Before the first measurement: the compile is nobody's load.
  buildServer()
  const machine0 = await machineCpu()
  const bench0 = process.cpuUsage()
  const load0 = os.loadavg()[0] ?? 0

  if (only !== undefined && single) {
    const part = await single()
    const totalSec = (performance.now() - started) / 1000
    log()
    logHeader(machine)
    log()
    part.report()
    log('Checks')
    part.checks()
    log(`Total bench time (BENCH_ONLY=${only}): ${fmt(totalSec, 1)} s`)
    log()
    log(JSON.stringify(rounded({ bench: 'superclip-sync', only, date: new Date().toISOString(), totalSec, machine, [only]: part.result })))
    clearTimeout(watchdog)
    return
  }

  progress('raw limits: Y.applyUpdate ...')
  const apply = measureApply()
  lap('rawApply')
  progress('in-process: conflict detection and indexing on the Yjs path ...')
  const yjsPath = await measureYjsPath()
  lap('yjsPath')
  progress('raw limits: LevelDB ...')
  const levelStart = await measureLevel()
  lap('rawLevel')

  const throughput: ThroughputResult[] = []
  for (const spec of THROUGHPUT) {
    progress(`throughput: ${spec.name}, ${spec.window} in flight ...`)
    throughput.push(await runThroughput(spec))
  }
  lap('throughput')
  const changeRates = await runChangeRates(CHANGE_RATES, (spec) =>
    progress(`change records vs Yjs updates: ${spec.name}, ${spec.window} in flight ...`),
  )
  lap('changeRates')
  progress('latency: 2 devices, one update at a time ...')
  const latency = await runLatency(LATENCY_UPDATES, 10_000)
  lap('latency')
  progress(`initial sync: ${SYNC_CLIPS} clips, Yjs and change-log devices ...`)
  const changeLog = changeLogProbe(CHANGE_LOG_LIMITS, CHANGE_LOG_WARM_REPS, CHANGE_LOG_COLD_LIMITS)
  const initialSync = await runInitialSync(SYNC_CLIPS, SYNC_CHUNK, SYNC_WARM_REPS, SYNC_COLD_REPS, changeLog.probe)
  const changeLogSync = changeLog.result()
  lap('initialSync')
  const floods = await runFloods(FLOODS, progress)
  lap('flood')
  const growth = await runGrowth(GROWTH, progress)
  lap('growth')
  const operators = await runOperators(OPERATORS, progress)
  lap('operators')
  const reconnect = await runReconnect(RECONNECT, progress)
  lap('reconnect')
  const sdkCost = await runSdkCost(SDK_COST, progress)
  lap('sdk')
  const cluster = await runCluster(CLUSTER, progress)
  lap('cluster')
  progress('raw limits: LevelDB again (the disk is noisy) ...')
  const levelEnd = await measureLevel()
  lap('rawLevelEnd')
  const totalSec = (performance.now() - started) / 1000

  // Other processes on this machine during the run: machine busy time minus the bench's and its servers'.
  const machine1 = await machineCpu()
  const benchCpu = process.cpuUsage(bench0)
  const contention =
    machine0 && machine1
      ? {
          otherCoreSec:
            Math.max(
              0,
              machine1.busyUs - machine0.busyUs - benchCpu.user - benchCpu.system - serverCpuTotal.us - floods.reduce((sum, f) => sum + f.abuser.totalCpuUs, 0) - loadCpuTotal.us,
            ) / 1e6,
          stealCoreSec: (machine1.stealUs - machine0.stealUs) / 1e6,
          loadAvg1mStart: load0,
          loadAvg1mEnd: os.loadavg()[0] ?? 0,
        }
      : null

  // The fsync rates of this disk vary run to run: ratios use the mean of the two measurements.
  const level: LevelLimits = {
    sync1PerSec: mean([levelStart.sync1PerSec, levelEnd.sync1PerSec]),
    sync100PerSec: mean([levelStart.sync100PerSec, levelEnd.sync100PerSec]),
    nosync1PerSec: mean([levelStart.nosync1PerSec, levelEnd.nosync1PerSec]),
  }
  const ratios = (r: ThroughputResult) => ({
    ofRawApply: r.ackedPerSec / apply.applyPerSec,
    ofRawDecodeApply: r.ackedPerSec / apply.decodeApplyPerSec,
    ofRawFsync: r.ackedPerSec / level.sync1PerSec,
    ofRawBatch100Puts: r.ackedPerSec / (level.sync100PerSec * 100),
  })

  // ---- report ----
  log()
  logHeader(machine)
  log()
  log('Raw limits (in the bench process, no server running)')
  const lvl = (f: (l: LevelLimits) => number) => `${fmt(f(levelStart))} / ${fmt(f(levelEnd))}`
  log(
    table(
      ['operation', 'rate', 'unit'],
      [
        ['Y.applyUpdate, one small clip update per call', fmt(apply.applyPerSec), `updates/s (${fmt(apply.updates)} updates of ${fmt(apply.meanUpdateBytes)} B mean)`],
        ['Y.decodeUpdate + Y.applyUpdate (server work per update)', fmt(apply.decodeApplyPerSec), 'updates/s'],
        ['LevelDB batch of 1 put (~100 B), sync: true', lvl((l) => l.sync1PerSec), 'writes/s = fsyncs/s (start / end of run)'],
        ['LevelDB batch of 100 puts (~100 B), sync: true', lvl((l) => l.sync100PerSec), `writes/s (mean ${fmt(level.sync100PerSec * 100)} puts/s)`],
        ['LevelDB batch of 1 put, sync: false', lvl((l) => l.nosync1PerSec), 'writes/s'],
      ],
    ),
  )
  log()
  log('1. Throughput: acknowledged updates per second, each update one new clip (a Y.Map in `clips`)')
  log('   window = unacked updates each device keeps in flight (1 = one at a time); acked/s = acked ÷ (first send … last ack).')
  log('   Devices count and time relayed updates but do not apply them (that would make this process the bottleneck).')
  log('   "no deflate": the same load from clients that do not offer permessage-deflate (all others offer it, as browsers do).')
  log(
    table(
      ['scenario', 'devices', 'window', 'acked', 'wall s', 'acked/s', 'of applyUpdate rate', 'of fsync rate', 'upd/fsync'],
      throughput.map((r) => [
        r.name,
        fmt(r.devices),
        fmt(r.window),
        fmt(r.acked),
        fmt(r.wallSec, 2),
        fmt(r.ackedPerSec),
        fmt(ratios(r).ofRawApply, 3),
        `${fmt(ratios(r).ofRawFsync, 2)}x`,
        fmt(r.updatesPerFsync, 1),
      ]),
    ),
  )
  log('   of applyUpdate rate = acked/s ÷ raw Y.applyUpdate rate; of fsync rate = acked/s ÷ raw synced-batch rate (mean of')
  log('   start and end). upd/fsync = acked updates ÷ the server\'s fsync+fdatasync calls, counted with perf stat (warm-up')
  log('   included; - if perf is unavailable).')
  log()
  log('   Where the time goes (same runs)')
  log(
    table(
      ['scenario', 'window', 'srv CPU µs/upd (usr+sys)', 'srv CPU%', 'bench CPU%', 'srv disk B/upd', 'srv RSS MiB'],
      throughput.map((r) => [
        r.name,
        fmt(r.window),
        `${fmt(r.serverCpuUsPerUpdate)} (${fmt(r.serverUserUsPerUpdate)}+${fmt(r.serverSysUsPerUpdate)})`,
        fmt(r.serverCpuPct),
        fmt(r.benchCpuPct),
        fmt(r.serverDiskBytesPerUpdate),
        fmt(r.serverRssMiB),
      ]),
    ),
  )
  log('   srv CPU = utime+stime of the server process, all threads (/proc/pid/stat, 10 ms ticks), per acked update and as % of')
  log('   one core; bench CPU = this process (the clients). srv disk = write_bytes of /proc/pid/io per acked update.')
  log()
  log('2. Latency, ms (send = emit of sync:update; ack = its ack callback; delivery = the relayed sync:update arriving at another device of the user)')
  log(
    table(
      ['scenario', 'ack p50', 'ack p99', 'delivery p50', 'delivery p99', 'deliveries', 'expected'],
      [
        [
          '1 user x 2 devices, 1 in flight (unloaded)',
          fmt(latency.ackP50Ms, 2),
          fmt(latency.ackP99Ms, 2),
          fmt(latency.deliveryP50Ms, 2),
          fmt(latency.deliveryP99Ms, 2),
          fmt(latency.delivered),
          fmt(latency.updates),
        ],
        ...throughput.map((r) => [
          `${r.name}, ${r.window} in flight (run of 1.)`,
          fmt(r.ackP50Ms, 2),
          fmt(r.ackP99Ms, 2),
          fmt(r.deliveryP50Ms, 2),
          fmt(r.deliveryP99Ms, 2),
          fmt(r.delivered),
          fmt(r.deliveriesExpected),
        ]),
      ],
    ),
  )
  log(
    `   Same round trip without a write (an empty sync:update: validated and acked, not stored): p50 ${fmt(latency.noWriteP50Ms, 2)} ms, p99 ${fmt(latency.noWriteP99Ms, 2)} ms.`,
  )
  log('   Under load, latency is mostly queueing: about (devices × window) ÷ acked/s.')
  log()
  const s = initialSync
  log(
    `3. Initial sync of a ${fmt(s.clips)}-clip document (pushed by one device in ${s.chunks} updates of ${fmt(s.populateChunkBytes)} B mean, ${fmt(s.populateSec, 2)} s incl. acks)`,
  )
  const syncRow = (label: string, m: SyncSample, n: number) => [
    `${label} (median of ${n})`,
    fmt(m.totalMs, 1),
    fmt(m.connectMs, 1),
    fmt(m.requestToResponseMs, 1),
    fmt(m.requestToCompleteMs, 1),
    fmt(m.updateBytes),
    fmt(m.wireBytes),
    fmt(m.serverCpuMs, 0),
    fmt(m.clientApplyMs, 1),
  ]
  log(
    table(
      ['fresh device', 'connect→complete', 'connect', 'request→response', 'request→complete', 'update B', 'wire B', 'srv CPU', 'client apply'],
      [syncRow('doc loaded in the server', s.warmMedian, s.warm.length), syncRow('first sync after a restart', s.coldMedian, s.cold.length)],
    ),
  )
  log('   Times in ms. update B = byte size of the sync:response update; wire B = TCP bytes the socket read from request to')
  log('   complete (websocket framing, permessage-deflate). connect = socket.connect() to `connect` (TCP, websocket, JWT).')
  log('   srv CPU = server CPU from connect to complete (after a restart: includes loading the document from LevelDB).')
  log('   client apply = Y.applyUpdate of the response into the empty doc, timed after sync:complete.')
  log()
  reportChangeRates(changeRates)
  reportChangeLogSync(s, changeLogSync)
  reportYjsPath(yjsPath)
  floods.forEach(reportFlood)
  reportGrowth(growth)
  reportOperators(operators)
  reportReconnect(reconnect, log)
  reportSdkCost(sdkCost, log)
  log()
  reportCluster(cluster, log)
  log('Checks')
  for (const r of throughput) {
    const problems = [
      r.failed > 0 ? `${r.failed} refused (first: ${r.firstError})` : '',
      r.unanswered > 0 ? `${r.unanswered} unanswered after the grace period` : '',
      r.delivered < r.deliveriesExpected ? `${r.deliveriesExpected - r.delivered} relays missing` : '',
      r.unmatchedRelays > 0 ? `${r.unmatchedRelays} unexpected relays` : '',
      r.verifiedClips < r.expectedClipsMin || r.verifiedClips > r.expectedClipsMax
        ? `a fresh device saw ${r.verifiedClips} clips of user 0, expected ${r.expectedClipsMin}..${r.expectedClipsMax}`
        : '',
      r.deviceErrors.length > 0 ? `device errors: ${r.deviceErrors.join('; ')}` : '',
    ].filter(Boolean)
    const ok = `ok: every update acked, every relay delivered, a fresh device saw all ${fmt(r.verifiedClips)} clips of user 0`
    log(`   ${r.name}, ${r.window} in flight: ${problems.length === 0 ? ok : problems.join('; ')}`)
  }
  log(
    `   latency run: ${latency.updates} acked, ${latency.failed} refused, ${latency.delivered} delivered; devices converged: ${latency.converged ? 'yes' : 'NO'}`,
  )
  for (const r of changeRates) {
    for (const p of [r.json, r.yjs]) {
      const problems = [
        p.failed > 0 ? `${p.failed} refused (first: ${p.firstError})` : '',
        p.unanswered > 0 ? `${p.unanswered} unanswered after the grace period` : '',
        p.oddAcks > 0 ? `${p.oddAcks} acks not version 1 without conflicts` : '',
        p.delivered < p.deliveriesExpected ? `${p.deliveriesExpected - p.delivered} relays missing` : '',
        p.unmatchedRelays > 0 ? `${p.unmatchedRelays} unexpected relays` : '',
        p.verifiedClips < p.expectedClipsMin || p.verifiedClips > p.expectedClipsMax
          ? `a fresh device saw ${p.verifiedClips} clips, expected ${p.expectedClipsMin}..${p.expectedClipsMax}`
          : '',
      ].filter(Boolean)
      const ok = `ok: every change acked, every relay delivered, a fresh ${p.path === 'json' ? 'JSON' : 'Yjs'} device saw all ${fmt(p.verifiedClips)} clips`
      log(`   ${r.name}, ${p.path === 'json' ? 'change records' : 'Yjs updates'}: ${problems.length === 0 ? ok : problems.join('; ')}`)
    }
    if (r.deviceErrors.length > 0) log(`   ${r.name}: device errors: ${r.deviceErrors.join('; ')}`)
  }
  log(
    changeLogSync.complete
      ? `   change-log sync: every fresh JSON device got all ${fmt(changeLogSync.expectedClips)} clips, one record each`
      : `   change-log sync: ${changeLogSync.problems.join('; ')}`,
  )
  const pathKinds = [
    ['writer saw the value', yjsPath.seen, 0, 0],
    ['blind overwrites, Yjs keeps the current value', yjsPath.blindKept, 1, 0],
    ['blind overwrites, Yjs takes the stale one', yjsPath.blindRestored, 1, 1],
  ] as const
  for (const [label, p, conflicts, writeBacks] of pathKinds) {
    const ok =
      p.overwritesPerUpdate === conflicts && p.conflictsPerUpdate === conflicts && p.fixupsPerUpdate === writeBacks && p.valuesRight
    log(
      `   Yjs path, ${label}: ${ok ? 'ok' : 'WRONG'}: per update ${fmt(p.overwritesPerUpdate, 2)} overwrites found, ` +
        `${fmt(p.conflictsPerUpdate, 2)} conflicts, ${fmt(p.fixupsPerUpdate, 2)} write-backs (expected ${conflicts}, ${conflicts}, ${writeBacks}); ` +
        `values after stageYjsUpdate ${p.valuesRight ? 'as expected' : 'WRONG'}`,
    )
  }
  floods.forEach(logFloodChecks)
  logGrowthChecks(growth)
  logOperatorsChecks(operators)
  logReconnectChecks(reconnect, log)
  logSdkCostChecks(sdkCost, log)
  logClusterChecks(cluster, log)
  log(
    `Server start (spawn to healthy /health), ms: ${throughput.map((r) => fmt(r.serverStartMs)).join(', ')}, ` +
      `${fmt(changeRates[0]?.serverStartMs)}, ${s.serverStartMs.map((v) => fmt(v)).join(', ')}, ${floods.map((f) => fmt(f.serverStartMs)).join(', ')}`,
  )
  log(`Total bench time: ${fmt(totalSec, 1)} s`)
  const part = (name: string) => fmt(partSec[name], 1)
  log(
    `   by part, s: raw Y.applyUpdate ${part('rawApply')}, Yjs path in-process (6.) ${part('yjsPath')}, LevelDB ${part('rawLevel')} + ${part('rawLevelEnd')},` +
      ` throughput (1.) ${part('throughput')}, change records vs Yjs (4.) ${part('changeRates')}, latency (2.) ${part('latency')},` +
      ` initial sync (3.) and change-log sync (5.) ${part('initialSync')}, of which 5. ${fmt(s.probeSec, 1)} (restart included),` +
      ` flood (7.) ${part('flood')}, growing document (8.) ${part('growth')}, operators (9.) ${part('operators')},` +
      ` reconnect storm (10.) ${part('reconnect')}, SDK cost (11.) ${part('sdk')}.`,
  )
  if (contention) {
    const share = contention.otherCoreSec / (totalSec * machine.cpus)
    log(
      `Other processes used ${fmt(contention.otherCoreSec, 1)} core-s during the run (${fmt(share * 100)}% of the machine), hypervisor steal ${fmt(contention.stealCoreSec, 1)} core-s;` +
        ` load average ${fmt(contention.loadAvg1mStart, 2)} at start, ${fmt(contention.loadAvg1mEnd, 2)} at end.`,
    )
    if (share > 0.1) log('WARNING: the machine was busy with other work during this run; the figures above are lower than this machine can do.')
  }
  log()
  log(
    JSON.stringify(
      rounded({
        bench: 'superclip-sync',
        date: new Date().toISOString(),
        totalSec,
        partSec,
        machine,
        contention,
        raw: { apply, levelStart, levelEnd, levelMean: level },
        throughput: throughput.map((r) => ({ ...r, ...ratios(r) })),
        latency,
        initialSync,
        changeRates,
        changeLogSync,
        yjsPath,
        floods,
        growth,
        operators,
        reconnect,
        sdkCost,
        cluster,
      }),
    ),
  )
  clearTimeout(watchdog)
}

function logHeader(machine: { node: string; cpus: number; cpuModel: string; memGiB: number | null; platform: string; yjs: string; socketIo: string; level: string; tmpdir: string }): void {
  log(`SuperClip sync benchmark: node ${machine.node}, ${machine.cpus} x ${machine.cpuModel}, ${machine.memGiB} GiB, ${machine.platform}`)
  log(`yjs ${machine.yjs}, socket.io ${machine.socketIo}, level ${machine.level}; data dirs under ${machine.tmpdir}.`)
  log('Server: child process, default settings (SYNC_WRITES=true), fresh data dir per scenario. Clients: this process.')
}

const counts = (c: Record<string, number>) =>
  Object.keys(c).length === 0
    ? 'none'
    : Object.entries(c)
        .map(([k, n]) => `${k} ${fmt(n)}`)
        .join(', ')

function reportFlood(f: FloodResult): void {
  const { spec, abuser: a } = f
  const what = spec.mode === 'import' ? `one device importing ${fmt(spec.importClips)} clips` : 'one abusive socket at full speed'
  log(`7. Flood (issues 4, 15), ${spec.name}: ${what} while ${fmt(f.devices)} normal devices sync`)
  log(
    `   Normal devices: ${spec.users} users × ${spec.devicesPerUser} devices (pro plan) in this process, each a new clip every ${spec.periodMs} ms with one`,
  )
  log(
    `   update in flight, staggered; one server, the same devices in every phase, ${fmt(spec.phaseMs / 1000)} s each after a ${fmt(spec.warmupMs / 1000)} s warm-up.`,
  )
  if (spec.mode === 'import') {
    const rate = PLANS[spec.abuserPlan].socketEvents
    log(`   Importer: one ${spec.abuserPlan}-plan socket in a child process, one-clip sync:updates from one Y.Doc, up to ${fmt(spec.abuserWindow)} unacked,`)
    log(`   paced to its plan's socket rate (${fmt(rate.burst)} at once, then ${fmt(rate.perSecond)}/s); it starts with "with abuser", which the run`)
    log('   calls that phase; the next phase waits until the import is done.')
  } else {
    const clients = spec.abuserClients === 'new' ? 'each under a new client id' : 'all from one Y.Doc'
    log(`   Abuser: one ${spec.abuserPlan}-plan socket in a child process, valid one-clip sync:updates (${clients}), up to`)
    log(`   ${fmt(spec.abuserWindow)} unacked; connected (idle) from the start, flooding only in "with abuser"; disconnected or refused, it connects`)
    log('   again at once.')
  }
  log(
    f.pinned
      ? `   The server runs on CPU ${SERVER_CPU}, this process (the 100 devices) and the ${spec.mode === 'import' ? 'importer' : 'abuser'} on CPU ${LOAD_CPU} (taskset; BENCH_FLOOD_PIN=0 unpins).`
      : `   UNPINNED: the server, this process (the 100 devices) and the ${spec.mode === 'import' ? 'importer' : 'abuser'} share every core.`,
  )
  log(
    `   Server node flags: ${f.serverFlags.join(' ') || 'none'}${f.pinned ? ' (one core: --single-threaded-gc unless BENCH_FLOOD_GC=default; BENCH_SERVER_NODE_ARGS adds more)' : ''}.`,
  )
  const row = (p: FloodPhase) => [
    p.name,
    fmt(p.acked),
    fmt(p.ackedPerSec),
    fmt(p.ackP50Ms, 2),
    fmt(p.ackP99Ms, 2),
    fmt(p.ackMaxMs, 1),
    fmt(p.lateSends),
    fmt(p.serverLoop.maxMs, 1),
    fmt(p.serverLoop.p99Ms, 1),
    fmt(p.serverCpuPct),
    fmt(p.benchCpuPct),
    fmt(p.benchLoopMaxMs, 1),
    fmt(p.otherCpuPct),
  ]
  log(
    table(
      ['phase', 'acked', 'acked/s', 'ack p50', 'ack p99', 'ack max', 'late sends', 'srv loop max', 'srv loop p99', 'srv CPU%', 'bench CPU%', 'bench loop max', 'other CPU%'],
      f.phases.map(row),
    ),
  )
  log(
    `   ack p99 with ÷ without the abuser: ${fmt(f.ratio.ackP99, 2)}x (p50: ${fmt(f.ratio.ackP50, 2)}x); with ÷ after it stopped:` +
      ` ${fmt(f.ratio.ackP99VsAfter, 2)}x (p50: ${fmt(f.ratio.ackP50VsAfter, 2)}x). Times in ms.`,
  )
  for (const p of f.phases) {
    const { splitMs, first, rest } = p.bySendTime
    log(
      `   ${p.name}, by send time: first ${fmt(splitMs / 1000)} s p50 ${fmt(first.ackP50Ms, 2)} / p99 ${fmt(first.ackP99Ms, 2)} ms (${fmt(first.acked)} acks),` +
        ` the rest p50 ${fmt(rest.ackP50Ms, 2)} / p99 ${fmt(rest.ackP99Ms, 2)} ms (${fmt(rest.acked)} acks).`,
    )
  }
  log("   srv loop = the server's event-loop delay over the phase (GET /admin/metrics, reset at the phase's start, sampled every")
  log('   10 ms): max = the longest time it could answer no one. late sends = sends that waited past their tick for the previous')
  log("   ack. srv CPU, bench CPU = % of one core; bench loop max = longest block of this process's event loop, which times the acks.")
  log('   other CPU = every other process on the machine (/proc/stat busy time minus server, bench and abuser), % of one core.')
  const busiest = Math.max(...f.phases.map((p) => p.otherCpuPct ?? 0))
  if (busiest > 20) {
    log(`   WARNING: other processes used up to ${fmt(busiest)}% of a core during these phases; the latencies above include waiting for them.`)
  }
  if (spec.mode === 'import') {
    log(
      `   Import: ${fmt(f.importAcked)} of ${fmt(spec.importClips)} clips acknowledged` +
        (f.importDoneSec === null ? ', NOT finished' : `, the last ${fmt(f.importDoneSec, 1)} s after it began (${fmt(spec.importClips / f.importDoneSec)}/s)`) +
        `; refused: ${counts(a.refused)}.`,
    )
  }
  log(
    `   Abuser, ${fmt(a.floodSec, 1)} s of flood: ${fmt(a.sent)} sync:updates sent (${fmt(f.abuserSentPerSec)}/s, abuser CPU ${fmt(f.abuserCpuPct)}% of a core${f.abuserNice === null ? ', at this process\'s priority' : `, nice ${f.abuserNice}`}),` +
      ` ${fmt(a.ackedOk)} acked ok; refused: ${counts(a.refused)};`,
  )
  log(
    `   disconnected ${counts(a.disconnects)} (${fmt(a.abuseNotices)} 'abuse' notices), connected again ${fmt(a.reconnects)} times,` +
      ` handshakes refused: ${counts(a.connectRefused)}; unanswered: ${fmt(a.unansweredAtDisconnect)} at disconnects, ${fmt(a.unansweredAtStop)} at stop.`,
  )
  const r = f.phases.find((p) => p.name === 'with abuser')?.refusals
  if (r) {
    log(
      `   Server refusal counters gained in "with abuser": rateLimited ${fmt(r.rateLimited)}, invalid ${fmt(r.invalid)}, disconnected ${fmt(r.disconnected)},` +
        ` authFailures ${fmt(r.authFailures)}, connectionsRefused ${fmt(r.connectionsRefused)}.`,
    )
  }
  log()
}

function reportGrowth(g: GrowthResult): void {
  log(`8. A growing document: one device writes ${fmt(g.clipBytes)}-byte clips into one document, ${fmt(g.window)} unacked, ${fmt(g.segments)} segments of ${fmt(g.updatesPerSegment)}`)
  log('   updates; the state passes COMPACT_MAX_BYTES (4 MB) half-way. The cost of an update should not grow with the document.')
  log(
    table(
      ['segment', 'clips after', 'state MB', 'acked/s', 'srv CPU µs/update', 'longest block ms'],
      g.segments_.map((s, i) => [fmt(i + 1), fmt(s.clips), fmt(s.stateMB, 1), fmt(s.ackedPerSec), fmt(s.serverCpuUsPerUpdate), fmt(s.maxBlockMs, 1)]),
    ),
  )
  log(`   server CPU per update, last segment ÷ the cheapest under 4 MB: ${fmt(g.cpuGrowth, 2)}`)
  log()
}

function logGrowthChecks(g: GrowthResult): void {
  const failed = g.segments_.reduce((n, s) => n + s.failed, 0)
  const unanswered = g.segments_.reduce((n, s) => n + s.unanswered, 0)
  const problems = [
    failed > 0 ? `${failed} updates refused` : '',
    unanswered > 0 ? `${unanswered} updates not sent or not answered` : '',
    !Number.isFinite(g.cpuGrowth) ? 'no CPU figure to compare' : '',
    // Before compaction counted appended bytes, every segment past 4 MB cost more than the last (64x at 8 MB).
    g.cpuGrowth > 3 ? `an update costs ${fmt(g.cpuGrowth, 1)}x more at the end than at the start` : '',
  ].filter(Boolean)
  log(problems.length === 0 ? `   growth: ok: every update acked; last segment ${fmt(g.cpuGrowth, 2)}x the CPU per update under 4 MB` : `   growth: ${problems.join('; ')}`)
}

function reportOperators(o: OperatorsResult): void {
  log(`9. Operators: snapshot and restore over the admin API, and what snapshots cost the users writing meanwhile`)
  log(
    table(
      ['measure', 'value'],
      [
        [`snapshot of ${fmt(o.clips)} clips (median of 3), ms`, fmt(o.snapshotMs, 1)],
        ['… its bytes', fmt(o.snapshotBytes)],
        [`restore dry run after ${fmt(100)} clips changed, ms`, fmt(o.dryRunMs, 1)],
        ['restore (before-restore snapshot, forward changes), ms', fmt(o.restoreMs, 1)],
        [`snapshot of a ${fmt(o.bigStateMB, 1)} MB document, ms`, fmt(o.bigSnapshotMs, 1)],
        ['… longest event-loop block meanwhile, ms', fmt(o.snapshotBlockMs, 1)],
        ['… longest block in an idle window as long, ms', fmt(o.idleBlockMs, 1)],
        ['100 x 2 acked/s, snapshots every second (rounds)', o.withSnapshots.map((v) => fmt(v)).join(', ')],
        ['100 x 2 acked/s, no snapshots (rounds)', o.withoutSnapshots.map((v) => fmt(v)).join(', ')],
        ['with ÷ without (medians)', fmt(o.throughputRatio, 2)],
      ],
    ),
  )
  log()
}

function logOperatorsChecks(o: OperatorsResult): void {
  const problems = [
    o.restoreUpdated !== 100 ? `the restore set back ${o.restoreUpdated} clips, not 100` : '',
    !(o.snapshotBytes > 0) ? 'an empty snapshot' : '',
  ].filter(Boolean)
  log(problems.length === 0 ? `   operators: ok: the restore set back the 100 changed clips; 8 MB snapshot's longest block ${fmt(o.snapshotBlockMs, 1)} ms` : `   operators: ${problems.join('; ')}`)
}

function logFloodChecks(f: FloodResult): void {
  const problems = [
    ...f.phases.flatMap((p) => [
      p.failed > 0 ? `${p.name}: ${p.failed} normal updates refused (first: ${p.firstError})` : '',
      p.unanswered > 0 ? `${p.name}: ${p.unanswered} normal updates unanswered` : '',
    ]),
    f.normalClips.found < f.normalClips.min || f.normalClips.found > f.normalClips.max
      ? `a fresh device saw ${f.normalClips.found} clips of user 0, expected ${f.normalClips.min}..${f.normalClips.max}`
      : '',
    f.abuserClips.found < f.abuserClips.min || f.abuserClips.found > f.abuserClips.max
      ? `the abuser's document holds ${f.abuserClips.found} clips, expected ${f.abuserClips.min}..${f.abuserClips.max} (acked ok .. plus unanswered)`
      : '',
    f.deviceErrors.length > 0 ? `device errors: ${f.deviceErrors.join('; ')}` : '',
    f.abuserStderr.length > 0 ? `abuser stderr: ${f.abuserStderr.join(' | ')}` : '',
    f.spec.mode === 'import' && f.importDoneSec === null ? `the import finished ${fmt(f.importAcked)} of ${fmt(f.spec.importClips)} clips` : '',
  ].filter(Boolean)
  // Issue 15: the normal devices within FLOOD_MAX_RATIO of the run without the abuser, and no long block in any phase.
  const isolation = [
    f.ratio.ackP50 > FLOOD_MAX_RATIO ? `ack p50 ${fmt(f.ratio.ackP50, 2)}x` : '',
    f.ratio.ackP99 > FLOOD_MAX_RATIO ? `ack p99 ${fmt(f.ratio.ackP99, 2)}x` : '',
    ...f.phases.map((p) => (p.serverLoop.maxMs >= FLOOD_MAX_BLOCK_MS ? `a ${fmt(p.serverLoop.maxMs, 1)} ms block ${p.name}` : '')),
  ].filter(Boolean)
  if (isolation.length > 0 || problems.length > 0) process.exitCode = 1
  log(
    isolation.length === 0
      ? `   flood, ${f.spec.name}: isolation ok: ack p50 ${fmt(f.ratio.ackP50, 2)}x, p99 ${fmt(f.ratio.ackP99, 2)}x of the run without it (at most ${FLOOD_MAX_RATIO}x); longest block ${fmt(Math.max(...f.phases.map((p) => p.serverLoop.maxMs)), 1)} ms (under ${FLOOD_MAX_BLOCK_MS})`
      : `   flood, ${f.spec.name}: FAILED isolation (at most ${FLOOD_MAX_RATIO}x, blocks under ${FLOOD_MAX_BLOCK_MS} ms): ${isolation.join('; ')}`,
  )
  log(
    problems.length === 0
      ? `   flood: ok: every normal update acked in every phase; a fresh device saw all ${fmt(f.normalClips.found)} clips of user 0; the` +
          ` abuser's document holds ${fmt(f.abuserClips.found)} clips, within ${fmt(f.abuserClips.min)} acked ok and ${fmt(f.abuserClips.max)} (acked ok plus unanswered: a looser bound the more were in flight)`
      : `   flood: ${problems.join('; ')}`,
  )
}

function reportChangeRates(rates: readonly ChangeRateResult[]): void {
  log('4. Change records (JSON devices) against Yjs updates: new clips acknowledged per second, same server, same run')
  log('   JSON: sync:entity_created {id, entityType, entityId, data: {content, contentType, createdAt}, version: 0}; Yjs: sync:update')
  log('   of the same clip as a Y.Map. Each path has its own user; phases alternate JSON, Yjs, Yjs, JSON (after a warm-up of each).')
  const row = (r: ChangeRateResult, p: PathRate) => [
    r.name,
    p.path === 'json' ? 'change records' : 'Yjs updates',
    fmt(r.window),
    fmt(p.acked),
    fmt(p.wallSec, 2),
    fmt(p.ackedPerSec),
    fmt(p.serverCpuUsPerChange),
    fmt(p.ackP50Ms, 2),
    fmt(p.ackP99Ms, 2),
    fmt(p.deliveryP50Ms, 2),
    fmt(p.deliveryP99Ms, 2),
  ]
  log(
    table(
      ['scenario', 'path', 'window', 'acked', 'wall s', 'acked/s', 'srv CPU µs/change', 'ack p50', 'ack p99', 'delivery p50', 'delivery p99'],
      rates.flatMap((r) => [
        row(r, r.json),
        row(r, r.yjs),
        [
          r.name,
          'JSON ÷ Yjs',
          '',
          '',
          '',
          `${fmt(r.ratio.ackedPerSec, 2)}x`,
          `${fmt(r.ratio.serverCpuPerChange, 2)}x`,
          `${fmt(r.ratio.ackP50, 2)}x`,
          `${fmt(r.ratio.ackP99, 2)}x`,
          '',
          '',
        ],
      ]),
    ),
  )
  log('   acked/s = acked ÷ the measured phases\' (first send … last ack) summed; srv CPU = server utime+stime over those phases')
  log('   per acked change. Latencies in ms; delivery = the change reaching the user\'s other devices (sync:entity_created, or')
  log('   the relayed sync:update); devices count and time what they receive but keep nothing.')
  log()
}

function reportChangeLogSync(s: InitialSyncResult, c: ChangeLogSyncResult): void {
  log(`5. Full change-log sync (JSON device) of the ${fmt(s.clips)}-clip document of 3., beside its Yjs initial sync (same server, same run)`)
  const yjsRow = (label: string, m: SyncSample, n: number) => [
    `Yjs state vector, ${label} (median of ${n})`,
    fmt(m.requestToCompleteMs, 1),
    fmt(m.requestToResponseMs, 1),
    fmt(m.totalMs, 1),
    '1',
    fmt(m.updateBytes),
    fmt(m.wireBytes),
    fmt(m.serverCpuMs, 0),
    fmt(m.clientApplyMs, 1),
  ]
  const jsonRow = (label: string, limit: number | null, m: ChangeLogSample | null, n: number) => [
    `JSON change log, limit ${limit === null ? 'default (500)' : fmt(limit)}, ${label} (${n === 1 ? 'one run' : `median of ${n}`})`,
    fmt(m?.requestToCompleteMs, 1),
    fmt(m?.firstPageMs, 1),
    fmt(m?.totalMs, 1),
    fmt(m?.pages),
    fmt(m?.changesJsonBytes),
    fmt(m?.wireBytes),
    fmt(m?.serverCpuMs, 0),
    'in the time',
  ]
  const rows = [
    yjsRow('doc loaded', s.warmMedian, s.warm.length),
    ...c.rows.map((r) => jsonRow('doc loaded', r.limit, r.warmMedian, r.warm.length)),
    yjsRow('after a restart', s.coldMedian, s.cold.length),
    ...c.rows.filter((r) => r.cold.length > 0).map((r) => jsonRow('after a restart', r.limit, r.coldMedian, r.cold.length)),
  ]
  log(
    table(['fresh device', 'request→complete', 'request→1st page', 'connect→complete', 'pages', 'payload B', 'wire B', 'srv CPU', 'client decode'], rows),
  )
  for (const r of c.rows) {
    const m = r.warmMedian
    if (!m) continue
    log(
      `   limit ${r.limit === null ? 'default' : fmt(r.limit)}, doc loaded: ${fmt(m.requestToCompleteMs / s.warmMedian.requestToCompleteMs, 2)}x the Yjs time,` +
        ` ${fmt(m.changesJsonBytes / s.warmMedian.updateBytes, 2)}x its payload bytes, ${fmt((m.wireBytes ?? Number.NaN) / (s.warmMedian.wireBytes ?? Number.NaN), 2)}x its wire bytes,` +
        ` ${fmt(m.serverCpuMs / s.warmMedian.serverCpuMs, 2)}x its server CPU; ${fmt((m.serverCpuMs * 1000) / m.changes)} µs server CPU per record.`,
    )
  }
  log('   Times in ms. JSON: request→complete = first sync:request to sync:complete, each next page asked for as soon as the')
  log('   previous one arrives (lastSyncTimestamp: cursor); it includes socket.io-client parsing the JSON. Yjs: the binary update')
  log('   still has to be applied after that (client decode = Y.applyUpdate, timed after sync:complete). payload B = JSON text')
  log('   length of the pages\' `changes` (JSON) or byte size of the update (Yjs); wire B = TCP bytes read from request to complete')
  log('   (permessage-deflate on frames over 32 KiB). srv CPU from connect to complete (after a restart: includes the load).')
  log()
}

function reportYjsPath(y: YjsPathResult): void {
  log(`6. Conflict detection on the Yjs path, in-process (no server): small updates writing \`content\` (a manual field) of`)
  log(
    `   existing clips of a ${fmt(y.clips)}-clip document, ${fmt(y.updates)} per batch (${fmt(y.meanUpdateBytes)} B mean), median of ${y.rounds} batches; updates per CPU-second`,
  )
  const row = (label: string, p: PathRates) => [
    label,
    fmt(p.applyPerSec),
    fmt(p.inspectPerSec),
    fmt(p.serverWorkPerSec),
    fmt(p.applyYjsUpdatePerSec),
    `${fmt(p.costRatio, 2)}x`,
    `${fmt(p.fullCostRatio, 2)}x`,
    `${fmt(p.applyUs, 1)} / ${fmt(p.decodeUs, 1)} / ${fmt(p.inspectUs, 1)} / ${fmt(p.indexUs, 1)} / ${fmt(p.restOfPathUs, 1)}`,
  ]
  log(
    table(
      ['updates', '(a) applyUpdate', '(d) decode+inspect', '(b) server work', '(c) stageYjsUpdate', 'b/a', 'c/a', 'µs/upd: a / decode / d / b-a-d / c-b'],
      [
        row('made by a device that saw the value', y.seen),
        row('blind overwrites, Yjs keeps current value', y.blindKept),
        row('blind overwrites, Yjs takes stale value', y.blindRestored),
      ],
    ),
  )
  log('   (a) Y.applyUpdate alone. (d) decodeClientUpdate + inspectUpdate, not applied (decode = decodeClientUpdate alone).')
  log('   (b) the server\'s Yjs path work: decode + inspect + apply in a transaction + touchedEntities/recordTouched on a')
  log('   SyncDocument. (c) stageYjsUpdate with its commit, 8 calls in flight, each 8 settled by one group commit (store stubbed): (b)')
  log('   plus conflict records, the current value written back, the commit. b/a, c/a = cost per update relative to (a).')
  log('   b-a-d = the transaction wrapper and the entity index; c-b = the rest of the path. Rates are updates per second')
  log('   of this process\'s CPU time (user+sys, GC included), so that a busy machine skews no path; medians over the batches.')
  log('   Blind overwrites: made on a stale replica after another device changed the field; each is a conflict. Of two')
  log('   concurrent writes Yjs keeps the one of the higher client id: when that is the stale one, the server writes the current')
  log('   value back (a second transaction and update). Both cases are measured, with client ids chosen for each.')
  log()
}

runBench('bench', main)
