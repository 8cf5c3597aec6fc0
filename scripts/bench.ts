/**
 * `npm run bench`: throughput, latency and initial-sync figures of the sync
 * server on this machine, next to the raw limits of its two building blocks
 * (Y.applyUpdate and synced LevelDB batches), measured in the same run.
 *
 * The server runs in a child process (`node --import tsx src/index.ts`, default
 * settings, so SYNC_WRITES=true) with a fresh data dir per scenario; the
 * clients are real socket.io-client sockets (websocket transport) with real
 * Y.Docs, in this process. Prints a table, then one JSON line with every
 * number. Not a test: only sanity checks, reported under "Checks".
 *
 * Progress goes to stderr. BENCH_SERVER_NODE_ARGS adds node flags to the
 * server (e.g. `--cpu-prof --cpu-prof-dir=.bench/prof` to profile it).
 */
import { createRequire } from 'node:module'
import os from 'node:os'
import { measureApply, measureLevel, type LevelLimits } from './bench/raw.js'
import {
  runInitialSync,
  runLatency,
  runThroughput,
  type SyncSample,
  type ThroughputResult,
  type ThroughputSpec,
} from './bench/scenarios.js'
import { cleanupSync, machineCpu, serverCpuTotal } from './bench/server.js'
import { fmt, mean, round, table } from './bench/stats.js'

/** The whole run is aborted (children killed, temp dirs removed) past this. */
const WATCHDOG_MS = 6 * 60_000

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

/** Rounds every number of a result for the JSON line. */
function rounded(value: unknown): unknown {
  if (typeof value === 'number') return Number.isInteger(value) ? value : round(value, 3)
  if (Array.isArray(value)) return value.map(rounded)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rounded(v)]))
  }
  return value
}

async function main(): Promise<void> {
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

  const machine0 = await machineCpu()
  const bench0 = process.cpuUsage()
  const load0 = os.loadavg()[0] ?? 0

  progress('raw limits: Y.applyUpdate ...')
  const apply = measureApply()
  progress('raw limits: LevelDB ...')
  const levelStart = await measureLevel()

  const throughput: ThroughputResult[] = []
  for (const spec of THROUGHPUT) {
    progress(`throughput: ${spec.name}, ${spec.window} in flight ...`)
    throughput.push(await runThroughput(spec))
  }
  progress('latency: 2 devices, one update at a time ...')
  const latency = await runLatency(LATENCY_UPDATES, 10_000)
  progress(`initial sync: ${SYNC_CLIPS} clips ...`)
  const initialSync = await runInitialSync(SYNC_CLIPS, SYNC_CHUNK, SYNC_WARM_REPS, SYNC_COLD_REPS)
  progress('raw limits: LevelDB again (the disk is noisy) ...')
  const levelEnd = await measureLevel()
  const totalSec = (performance.now() - started) / 1000

  // Other processes on this machine during the run: machine busy time minus the bench's and its servers'.
  const machine1 = await machineCpu()
  const benchCpu = process.cpuUsage(bench0)
  const contention =
    machine0 && machine1
      ? {
          otherCoreSec: Math.max(0, machine1.busyUs - machine0.busyUs - benchCpu.user - benchCpu.system - serverCpuTotal.us) / 1e6,
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
  log(`SuperClip sync benchmark: node ${machine.node}, ${machine.cpus} x ${machine.cpuModel}, ${machine.memGiB} GiB, ${machine.platform}`)
  log(`yjs ${machine.yjs}, socket.io ${machine.socketIo}, level ${machine.level}; data dirs under ${machine.tmpdir}.`)
  log('Server: child process, default settings (SYNC_WRITES=true), fresh data dir per scenario. Clients: this process.')
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
  log(`   initial sync: every fresh device got all ${fmt(s.clips)} clips`)
  log(`Server start (spawn to healthy /health), ms: ${throughput.map((r) => fmt(r.serverStartMs)).join(', ')}, ${s.serverStartMs.map((v) => fmt(v)).join(', ')}`)
  log(`Total bench time: ${fmt(totalSec, 1)} s`)
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
        machine,
        contention,
        raw: { apply, levelStart, levelEnd, levelMean: level },
        throughput: throughput.map((r) => ({ ...r, ...ratios(r) })),
        latency,
        initialSync,
      }),
    ),
  )
  clearTimeout(watchdog)
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    cleanupSync()
    process.exit(130)
  })
}
process.on('exit', cleanupSync)

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    cleanupSync()
    process.exit(1)
  },
)
