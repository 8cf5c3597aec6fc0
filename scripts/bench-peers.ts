/**
 * `npm run bench:peers`: our server side by side with y-websocket 1.5.4
 * (+ y-leveldb) and Hocuspocus 2.15.3 (+ LevelDB through its database
 * extension), on the workloads of issue 5, each server driven by its own
 * client (WebsocketProvider, HocuspocusProvider, our BenchDevice) making the
 * same Y.Doc edits. A fourth column, the Socket.IO floor
 * (bench-peers/socketio-floor-server.mjs), runs the workloads of live updates
 * against a bare Socket.IO server that only acks and relays our protocol's
 * messages: what those messages cost by themselves, the bound on any server
 * speaking this protocol.
 *
 * The peers are installed on demand into .bench/peers (see
 * scripts/bench-peers/install.ts); they are not dependencies of the project.
 * Each server runs on CPU 0 (`taskset -c 0`), this process (the load) on
 * CPU 1. Workloads run one after another, each against the three servers in
 * turn, every time on a fresh server over a fresh data dir. Prints one table
 * (ratios of ours against the best peer), then one JSON line with every
 * number; progress goes to stderr. A watchdog kills the servers and removes
 * the data dirs past WATCHDOG_MS, as do SIGINT and SIGTERM.
 *
 * For trying it out: BENCH_PEERS_TARGETS=ours,Hocuspocus and
 * BENCH_PEERS_WORKLOADS=1,5 run a subset. BENCH_SERVER_NODE_ARGS adds node
 * flags to our server (e.g. `--cpu-prof --cpu-prof-dir=.bench/prof`).
 */
import { readFile } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { allowedCpus, cleanupSync, clockTicksPerSecond, machineCpu, runBench } from './bench/server.js'
import { buildServer } from './lib/server-process.js'
import { fmt, rounded, table } from './bench/stats.js'
import { ensurePeers, peerPackages, PEERS_DIR } from './bench-peers/install.js'
import { LOAD_BOUND_PCT, LOAD_PROCS } from './bench-peers/load.js'
import { LOAD_CPU, pinning, startFloor, startHocuspocus, startOurs, startYWebsocket, type TargetName, type TargetServer } from './bench-peers/servers.js'
import {
  runColdLoad,
  runFanout,
  runJoin,
  runLatency,
  runLoss,
  runMemory,
  SETTLE_MS,
  TARGETS,
  type StartServer,
} from './bench-peers/workloads.js'

/** The whole run (install included) is aborted past this: servers killed, data dirs removed. */
const WATCHDOG_MS = 10 * 60_000

const FANOUT_1 = { users: 1, devicesPerUser: 10, clipsPerDevice: 100, rounds: 9, warmupRounds: 5, settle: true }
const FANOUT_2 = { users: 100, devicesPerUser: 2, clipsPerDevice: 10, rounds: 9, warmupRounds: 5, settle: false }
const JOIN = { clips: 10_000, chunk: 1000, reps: 5 }
const LOSS = { updates: 200, rounds: 3 }
const LATENCY = { warmup: 50, edits: 500 }
const MEMORY = { documents: 200, clipsPerDocument: 100 }
const COLD = { updates: 20_000, writers: 2 }

const log = (line = '') => process.stdout.write(`${line}\n`)
const progress = (line: string) => process.stderr.write(`[bench:peers] ${line}\n`)

/** CPU of this process and of its children that have exited (all the servers, npm), µs, from /proc/self/stat. */
async function selfAndChildrenCpuUs(): Promise<number | undefined> {
  try {
    const stat = await readFile('/proc/self/stat', 'utf8')
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number)
    // utime stime cutime cstime are fields 14..17, i.e. 11..14 after the state.
    const ticks = (f[11] ?? 0) + (f[12] ?? 0) + (f[13] ?? 0) + (f[14] ?? 0)
    return ticks * (1e6 / clockTicksPerSecond())
  } catch {
    return undefined
  }
}

type Better = 'higher' | 'lower'

/** Ours against the best peer, in the direction that is better for this row. */
function ratioText(ours: number | undefined, peers: (number | undefined)[], better: Better): string {
  const known = peers.filter((v): v is number => v !== undefined && Number.isFinite(v))
  if (ours === undefined || !Number.isFinite(ours) || known.length === 0) return '-'
  const best = better === 'higher' ? Math.max(...known) : Math.min(...known)
  if (ours === best) return 'same as best'
  const oursBetter = better === 'higher' ? ours > best : ours < best
  const [num, den] = better === 'higher' ? [ours, best] : [best, ours]
  if (den === 0 || num === 0) return oursBetter ? `better (${fmt(ours)} vs ${fmt(best)})` : `worse (${fmt(ours)} vs ${fmt(best)})`
  const factor = oursBetter ? num / den : den / num
  return `${fmt(factor, 2)}x ${oursBetter ? 'better' : 'worse'}`
}

interface Outcome<T> {
  result?: T
  error?: string
}

async function main(): Promise<void> {
  const started = performance.now()
  const watchdog = setTimeout(() => {
    process.stderr.write(`[bench:peers] aborted: over ${WATCHDOG_MS / 1000} s\n`)
    cleanupSync()
    process.exit(2)
  }, WATCHDOG_MS)
  watchdog.unref()

  // Each y-websocket WebsocketProvider adds a process 'exit' listener of its own; up to 200 devices are connected at once.
  process.setMaxListeners(0)
  const pin = pinning()
  progress(pin.note)
  const installStart = performance.now()
  const installed = await ensurePeers(progress)
  const installSec = (performance.now() - installStart) / 1000
  if (installed) progress(`peers installed in ${fmt(installSec, 1)} s`)

  const only = (name: string) => (process.env[name] ?? '').split(',').map((s) => s.trim()).filter(Boolean)
  const targets = only('BENCH_PEERS_TARGETS').length > 0 ? TARGETS.filter((t) => only('BENCH_PEERS_TARGETS').includes(t)) : TARGETS
  const workloads = new Set(only('BENCH_PEERS_WORKLOADS').length > 0 ? only('BENCH_PEERS_WORKLOADS').map(Number) : [1, 2, 3, 4, 5, 6, 7])

  // Every server start goes through here: records where the first one of each kind was allowed to run.
  const serverCpus: Partial<Record<TargetName, string>> = {}
  const starters: Record<TargetName, StartServer> = {
    'y-websocket': startYWebsocket,
    Hocuspocus: startHocuspocus,
    ours: startOurs,
    floor: startFloor,
  }
  const startFor = (name: TargetName): StartServer => async (dir) => {
    const server: TargetServer = await starters[name](dir)
    serverCpus[name] ??= await allowedCpus(server.pid)
    return server
  }

  // Before the first measurement: the compile is nobody's load.
  buildServer()
  const machine0 = await machineCpu()
  const own0 = await selfAndChildrenCpuUs()
  const load0 = os.loadavg()[0] ?? 0
  const partSec: Record<string, number> = {}

  // results[workload][target]
  const results: Record<string, Partial<Record<TargetName, Outcome<unknown>>>> = {}
  /** `floor`: whether the Socket.IO floor runs it too (it holds no documents: only the workloads of live updates). */
  const run = async <T>(n: number, key: string, label: string, floor: boolean, f: (start: StartServer) => Promise<T>) => {
    if (!workloads.has(n)) return
    const t0 = performance.now()
    results[key] = {}
    for (const target of targets) {
      if (target === 'floor' && !floor) continue
      progress(`${n}. ${label}: ${target} ...`)
      try {
        const result = await f(startFor(target))
        const problems = (result as { problems?: string[] }).problems ?? []
        if (problems.length > 0) progress(`   problems: ${problems.join('; ')}`)
        results[key][target] = { result }
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err)
        progress(`   FAILED: ${message}`)
        results[key][target] = { error: message.split('\n')[0] ?? message }
      }
    }
    partSec[key] = (performance.now() - t0) / 1000
  }

  // Not the floor on 1 x 10: it relays every update to each of 9 devices as its own message (ours merges a turn's), and
  // receiving those 18 frames per update saturates the load core (92% at 5,300 updates/s): it would measure the clients.
  await run(1, 'fanout1', '1 user x 10 devices x 100 new clips', false, (s) => runFanout(s, FANOUT_1, progress, pin.ok))
  await run(2, 'fanout100', '100 users x 2 devices x 10 new clips', true, (s) => runFanout(s, FANOUT_2, progress, pin.ok))
  await run(3, 'join', `a fresh device joins a ${fmt(JOIN.clips)}-clip document`, false, (s) => runJoin(s, JOIN.clips, JOIN.chunk, JOIN.reps))
  await run(4, 'loss', `SIGKILL right after ${LOSS.updates} updates were relayed`, false, (s) => runLoss(s, LOSS.updates, LOSS.rounds))
  await run(5, 'latency', 'edit to arrival on another device', true, (s) => runLatency(s, LATENCY.warmup, LATENCY.edits))
  await run(6, 'memory', `RSS of ${MEMORY.documents} loaded documents`, false, (s) => runMemory(s, MEMORY.documents, MEMORY.clipsPerDocument))
  await run(7, 'coldLoad', `cold load after ${fmt(COLD.updates)} small updates`, false, (s) => runColdLoad(s, COLD.updates, COLD.writers))

  const totalSec = (performance.now() - started) / 1000
  const machine1 = await machineCpu()
  const own1 = await selfAndChildrenCpuUs()
  const contention =
    machine0 && machine1 && own0 !== undefined && own1 !== undefined
      ? {
          otherCoreSec: Math.max(0, machine1.busyUs - machine0.busyUs - (own1 - own0)) / 1e6,
          stealCoreSec: (machine1.stealUs - machine0.stealUs) / 1e6,
          loadAvg1mStart: load0,
          loadAvg1mEnd: os.loadavg()[0] ?? 0,
        }
      : null

  // ---- the table ----
  const num = (key: string, target: TargetName, pick: (r: never) => number): number | undefined => {
    const r = results[key]?.[target]?.result
    return r === undefined ? undefined : pick(r as never)
  }
  interface Row {
    label: string
    key: string
    better: Better
    digits: number
    pick: (r: never) => number
    /** Instead of the number: the cell's text (the load CPU rows). */
    text?: (r: never) => string
    /** Whether the row's figure is marked load-bound (fan-out rows: FanoutResult.loadBound). */
    loadBound?: boolean
  }
  type Fanout = { loadCpuPct: number; loadMaxPct: number; loadBound: boolean; loadProcs: number }
  const loadText = (r: Fanout) => `${fmt(r.loadCpuPct)} / ${fmt(r.loadMaxPct)}${r.loadBound ? ' LOAD-BOUND' : ''}`
  const loadLabel = `   load CPU %: ${LOAD_PROCS} load processes + bench process, sum / busiest`
  const rows: Row[] = [
    { label: '1 user x 10 devices x 100 new clips: updates/s', key: 'fanout1', better: 'higher', digits: 0, pick: (r: { updatesPerSec: number }) => r.updatesPerSec, loadBound: true },
    { label: loadLabel, key: 'fanout1', better: 'lower', digits: 0, pick: (r: Fanout) => r.loadCpuPct, text: loadText },
    { label: '   server CPU s until all hold all 1,000', key: 'fanout1', better: 'lower', digits: 2, pick: (r: { serverCpuSec: number }) => r.serverCpuSec, loadBound: true },
    { label: `   server CPU s incl. ${SETTLE_MS / 1000} s after (deferred writes)`, key: 'fanout1', better: 'lower', digits: 2, pick: (r: { serverCpuSettledSec: number }) => r.serverCpuSettledSec },
    { label: '100 users x 2 devices x 10 new clips: updates/s', key: 'fanout100', better: 'higher', digits: 0, pick: (r: { updatesPerSec: number }) => r.updatesPerSec, loadBound: true },
    { label: loadLabel, key: 'fanout100', better: 'lower', digits: 0, pick: (r: Fanout) => r.loadCpuPct, text: loadText },
    { label: `fresh device joins a ${fmt(JOIN.clips)}-clip doc: ms`, key: 'join', better: 'lower', digits: 0, pick: (r: { medianMs: number }) => r.medianMs },
    { label: `SIGKILL after relay: lost of ${LOSS.updates} (worst of ${LOSS.rounds})`, key: 'loss', better: 'lower', digits: 0, pick: (r: { maxLost: number }) => r.maxLost },
    { label: '   lost once the device that held them synced again', key: 'loss', better: 'lower', digits: 0, pick: (r: { maxLostAfterReturn: number }) => r.maxLostAfterReturn },
    { label: 'edit to arrival on another device: p50 ms', key: 'latency', better: 'lower', digits: 2, pick: (r: { p50Ms: number }) => r.p50Ms },
    { label: '   p99 ms', key: 'latency', better: 'lower', digits: 2, pick: (r: { p99Ms: number }) => r.p99Ms },
    { label: `server RSS per loaded doc (${MEMORY.clipsPerDocument} clips, 1 device): KiB`, key: 'memory', better: 'lower', digits: 0, pick: (r: { perDocumentKiB: number }) => r.perDocumentKiB },
    { label: `cold load of a doc written as ${fmt(COLD.updates)} updates: ms`, key: 'coldLoad', better: 'lower', digits: 0, pick: (r: { coldLoadMs: number }) => r.coldLoadMs },
  ]
  const cell = (row: Row, target: TargetName) => {
    const outcome = results[row.key]?.[target]
    if (!outcome) return '-'
    if (outcome.error !== undefined) return 'failed'
    const v = num(row.key, target, row.pick)
    const problems = (outcome.result as { problems?: string[] }).problems ?? []
    const text = row.text ? row.text(outcome.result as never) : fmt(v, row.digits)
    return `${text}${isLoadBound(row, target) ? ' (load-bound)' : ''}${problems.length > 0 ? ' (!)' : ''}`
  }
  const isLoadBound = (row: Row, target: TargetName) =>
    row.loadBound === true && (results[row.key]?.[target]?.result as { loadBound?: boolean } | undefined)?.loadBound === true
  const ratioCell = (row: Row) => {
    if (row.text) return ''
    const ratio = ratioText(num(row.key, 'ours', row.pick), [num(row.key, 'y-websocket', row.pick), num(row.key, 'Hocuspocus', row.pick)], row.better)
    const bound = (['y-websocket', 'Hocuspocus', 'ours'] as const).some((t) => isLoadBound(row, t))
    return bound && ratio !== '-' ? `${ratio} (load-bound)` : ratio
  }
  const versions = peerPackages()
  log()
  log(
    `SuperClip sync side by side: node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}, ${fmt(os.totalmem() / 2 ** 30, 1)} GiB, ${os.type()} ${os.release()}`,
  )
  log(
    `y-websocket ${versions['y-websocket']} + y-leveldb ${versions['y-leveldb']}; Hocuspocus ${versions['@hocuspocus/server']} + level ${versions.level}; yjs ${versions.yjs} everywhere; peers in ${path.relative(process.cwd(), PEERS_DIR) || PEERS_DIR}.`,
  )
  log(`${pin.note}. Ours: default settings (SYNC_WRITES=true: every update acknowledged once fsynced), but no per-address handshake limit.`)
  log()
  log(
    table(
      ['workload', 'y-websocket', 'Hocuspocus', 'ours', 'ours vs best peer', 'Socket.IO floor'],
      rows
        .filter((row) => results[row.key])
        .map((row) => [
          row.label,
          cell(row, 'y-websocket'),
          cell(row, 'Hocuspocus'),
          cell(row, 'ours'),
          ratioCell(row),
          cell(row, 'floor'),
        ]),
    ),
  )
  log('   updates/s: updates (one new clip each) ÷ time from the first edit until every device held all its user\'s clips; median')
  log(`   of ${FANOUT_1.rounds} and ${FANOUT_2.rounds} rounds after ${FANOUT_1.warmupRounds} warm-up rounds. Join: median of ${JOIN.reps}. Latency: ${LATENCY.edits} edits, one at a time.`)
  log(`   load CPU: the clients of workloads 1 and 2 run in ${LOAD_PROCS} child processes${pin.ok ? ` sharing CPU ${LOAD_CPU}` : ''}; % of one core over the measured`)
  log(`   interval, median of the rounds. (load-bound) / LOAD-BOUND: a load process${pin.ok ? ', or all of them together on their one core,' : ''} was over ${LOAD_BOUND_PCT}%: that`)
  log('   figure may measure the clients, not the server.')
  log('   Socket.IO floor: not a sync server. A bare Socket.IO server with our options that acks each update and relays it, one')
  log('   relay per update, with no Yjs, no checks and no disk, driven by our client: what our protocol\'s messages cost by themselves.')
  if (Object.values(results).some((byTarget) => Object.values(byTarget).some((o) => o.error !== undefined || ((o.result as { problems?: string[] } | undefined)?.problems ?? []).length > 0))) {
    log('   (!) = the workload reported problems (listed below); failed = it did not complete.')
  }

  // ---- details ----
  const detail = (key: string, f: (r: never) => string) => {
    const parts = targets.map((t) => {
      const o = results[key]?.[t]
      return `${t} ${o?.result ? f(o.result as never) : (o?.error ?? '-')}`
    })
    return parts.join('; ')
  }
  log()
  log('Details')
  if (results.fanout1) {
    log(
      `   1. server CPU µs per update: ${detail('fanout1', (r: { serverCpuUsPerUpdate: number }) => fmt(r.serverCpuUsPerUpdate))}; load CPU (sum of the load processes): ${detail('fanout1', (r: { loadCpuPct: number }) => `${fmt(r.loadCpuPct)}%`)}`,
    )
    log(`      updates/s per round: ${detail('fanout1', (r: { rounds_: { updatesPerSec: number }[] }) => r.rounds_.map((x) => fmt(x.updatesPerSec)).join(', '))}`)
  }
  if (results.fanout100) {
    log(`   2. updates/s per round: ${detail('fanout100', (r: { rounds_: { updatesPerSec: number }[] }) => r.rounds_.map((x) => fmt(x.updatesPerSec)).join(', '))}`)
    log(
      `      server CPU µs per update: ${detail('fanout100', (r: { serverCpuUsPerUpdate: number }) => fmt(r.serverCpuUsPerUpdate))}; load CPU (sum of the load processes): ${detail('fanout100', (r: { loadCpuPct: number }) => `${fmt(r.loadCpuPct)}%`)}`,
    )
  }
  if (results.join) {
    log(`   3. document state ${detail('join', (r: { docBytes: number }) => `${fmt(r.docBytes / 1024)} KiB`)}; each join, ms: ${detail('join', (r: { joinMs: number[] }) => r.joinMs.map((x) => fmt(x)).join(', '))}`)
  }
  if (results.loss) {
    log(`   4. lost per round: ${detail('loss', (r: { rounds: { lost: number }[] }) => r.rounds.map((x) => fmt(x.lost)).join(', '))}`)
    log(`      lost per round once B synced again: ${detail('loss', (r: { rounds: { lostAfterReturn: number }[] }) => r.rounds.map((x) => fmt(x.lostAfterReturn)).join(', '))}`)
  }
  if (results.latency) log(`   5. max ms: ${detail('latency', (r: { maxMs: number }) => fmt(r.maxMs, 1))}`)
  if (results.memory) {
    log(
      `   6. RSS MiB base / ${MEMORY.documents} connected / loaded: ${detail('memory', (r: { rssBaseMiB: number; rssConnectedMiB: number; rssLoadedMiB: number }) => `${fmt(r.rssBaseMiB, 1)} / ${fmt(r.rssConnectedMiB, 1)} / ${fmt(r.rssLoadedMiB, 1)}`)}`,
    )
  }
  if (results.coldLoad) {
    log(
      `   7. write phase s: ${detail('coldLoad', (r: { writeSec: number }) => fmt(r.writeSec, 1))}; restart ms: ${detail('coldLoad', (r: { restartMs: number }) => fmt(r.restartMs))}`,
    )
  }
  const problems = Object.entries(results).flatMap(([key, byTarget]) =>
    Object.entries(byTarget).flatMap(([t, o]) => [
      ...(o.error !== undefined ? [`${key}, ${t}: FAILED: ${o.error}`] : []),
      ...((o.result as { problems?: string[] } | undefined)?.problems ?? []).map((p) => `${key}, ${t}: ${p}`),
    ]),
  )
  if (problems.length > 0) {
    log('Problems')
    for (const p of problems) log(`   ${p}`)
  }
  log('Checks')
  const loadBoundRows: string[] = []
  for (const [key, label] of [
    ['fanout1', '1. 1 user x 10 devices'],
    ['fanout100', '2. 100 users x 2 devices'],
  ] as const) {
    if (!results[key]) continue
    for (const t of targets) {
      const r = results[key]?.[t]?.result as (Fanout & { loadBoundRounds: number; rounds: number }) | undefined
      if (!r) continue
      const figures = `load CPU ${fmt(r.loadCpuPct)}% summed, busiest process ${fmt(r.loadMaxPct)}%; ${r.loadBoundRounds} of ${r.rounds} rounds over ${LOAD_BOUND_PCT}%`
      if (r.loadBound) loadBoundRows.push(`${label}, ${t}`)
      log(`   ${label}, ${t}: ${r.loadBound ? 'FAIL: load-bound' : 'ok: load not saturated'} (${figures})`)
    }
  }
  if (loadBoundRows.length > 0) log(`   FAILED: ${loadBoundRows.length} load-bound rows: ${loadBoundRows.join('; ')}. Their updates/s and server CPU measure the clients as much as the server.`)
  log(
    `Servers allowed on CPUs: ${Object.entries(serverCpus)
      .map(([t, c]) => `${t} ${c ?? '?'}`)
      .join(', ')}; this process: ${(await allowedCpus(process.pid)) ?? '?'}.`,
  )
  log(`Total time: ${fmt(totalSec, 1)} s${installed ? ` (installing the peers: ${fmt(installSec, 1)} s)` : ''}.`)
  if (contention) {
    const share = contention.otherCoreSec / (totalSec * os.cpus().length)
    log(
      `Other processes used ${fmt(contention.otherCoreSec, 1)} core-s during the run (${fmt(share * 100)}% of the machine), steal ${fmt(contention.stealCoreSec, 1)} core-s; load average ${fmt(contention.loadAvg1mStart, 2)} at start, ${fmt(contention.loadAvg1mEnd, 2)} at end.`,
    )
    if (share > 0.1) log('WARNING: the machine was busy with other work during this run; the figures are noisy.')
  }
  log()
  log(
    JSON.stringify(
      rounded({
        bench: 'superclip-sync-peers',
        date: new Date().toISOString(),
        totalSec,
        installSec: installed ? installSec : 0,
        partSec,
        pinned: pin.ok,
        serverCpus,
        versions,
        node: process.version,
        cpus: os.cpus().length,
        contention,
        config: { FANOUT_1, FANOUT_2, JOIN, LOSS, LATENCY, MEMORY, COLD, SETTLE_MS },
        loadBoundRows,
        results,
      }),
    ),
  )
  clearTimeout(watchdog)
  if (loadBoundRows.length > 0) {
    process.stderr.write(`[bench:peers] check failed: load-bound rows: ${loadBoundRows.join('; ')}\n`)
    cleanupSync()
    process.exit(1)
  }
}

runBench('bench:peers', main)
