/**
 * The flood run (issue 4, "Benchmark"): one abusive socket sending at full
 * speed while 100 normal devices sync. The normal devices' ack latency is
 * measured without the abuser, with it, and after it stopped, on one server
 * with the same devices throughout; the server's own event-loop monitor
 * (`GET /admin/metrics`, read with `reset=true` at the start of each phase and
 * again at its end) gives the longest block it had in each phase.
 *
 * The normal devices are this process's BenchDevices (pro tokens), each
 * making one new clip every `periodMs` with at most one update in flight
 * (`paced` in load.ts), staggered over the period. The abuser is
 * scripts/bench/flood-abuser.ts in a child process at the lowest priority
 * (nice 19), so that its client-side CPU does not stall this process's
 * event loop (which times the acks) on the core they share; it is
 * connected (idle) before the first phase and floods only in the second.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process'
import { existsSync } from 'node:fs'
import path from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import type { Readable, Writable } from 'node:stream'
import { PLANS } from '../../src/models/plans.js'
import { signToken } from '../../src/services/token.service.js'
import type { Plan } from '../../src/types/events.js'
import { REPO_ROOT } from '../lib/server-process.js'
import { LOAD_CPU, SERVER_CPU } from '../bench-peers/servers.js'
import type { BenchDevice } from './device.js'
import type { FloodAbuserReport } from './flood-abuser.js'
import { paced, SendTally } from './load.js'
import { clipsOnServer, connectDevices } from './scenarios.js'
import {
  BENCH_SECRET,
  machineCpu,
  makeTempDir,
  pinSelf,
  removeTempDir,
  startServer,
  trackChild,
  type AdminMetrics,
  type ServerHandle,
} from './server.js'
import { percentile, sleep } from './stats.js'

/**
 * `clipsOnServer`, for a user the server may still refuse for a while: a
 * socket of it struck out, and the server makes the user wait out the
 * `retryAfterMs` it was told (`connect_error` `rate_limited`).
 */
async function clipsAfterBan(server: ServerHandle, userId: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await clipsOnServer(server, userId)
    } catch (err) {
      const wait = /"retryAfterMs":(\d+)/.exec(err instanceof Error ? err.message : '')?.[1]
      if (wait === undefined || attempt >= 3) throw err
      await sleep(Number(wait) + 50)
    }
  }
}

export interface FloodSpec {
  /** What the report calls this run. */
  name: string
  /** `flood`: an abuser ignoring every limit and hint; `import`: one device importing `importClips` clips at its plan's rate. */
  mode: 'flood' | 'import'
  importClips: number
  users: number
  devicesPerUser: number
  /** Each normal device makes one new clip this often, ms. */
  periodMs: number
  warmupMs: number
  /** Length of each measured phase (sends stop after it; acks are awaited). */
  phaseMs: number
  /** The abuser's plan (its token's `plan` claim). */
  abuserPlan: Plan
  /** Unacknowledged `sync:update`s the abuser keeps in flight. */
  abuserWindow: number
  /** `new`: each abuser update under a new client id, valid on its own; `one`: all from one Y.Doc (flood-abuser.ts). */
  abuserClients: 'new' | 'one'
}

export interface LatencySplit {
  acked: number
  ackP50Ms: number
  ackP99Ms: number
}

/** Where the phases' acks are split by send time (FloodPhase.bySendTime). */
const SPLIT_MS = 2000

export type FloodPhaseName = 'without abuser' | 'with abuser' | 'after abuser stopped'

type Refusals = AdminMetrics['refusals']

export interface FloodPhase {
  name: FloodPhaseName
  /** The normal devices' sends, acks and refusals in the phase. */
  sent: number
  acked: number
  failed: number
  unanswered: number
  firstError: string | null
  /** Sends that went out after their tick because the previous update was still unacked. */
  lateSends: number
  ackP50Ms: number
  ackP99Ms: number
  ackMaxMs: number
  /** Acked ÷ the phase length. */
  ackedPerSec: number
  /** Ack latency of the sends made in the phase's first `splitMs` (with the abuser: its burst) and of those made after. */
  bySendTime: { splitMs: number; first: LatencySplit; rest: LatencySplit }
  /** The server's event loop over the phase (its `/admin/metrics` window, reset at the phase's start). */
  serverLoop: AdminMetrics['eventLoopDelayMs']
  /** Server CPU (utime+stime, all threads) over the phase, % of one core. */
  serverCpuPct: number
  /** This process's CPU (the normal devices), % of one core, and its own event loop's delay (it times the acks). */
  benchCpuPct: number
  benchLoopMaxMs: number
  benchLoopP99Ms: number
  /**
   * CPU of everything else on the machine over the phase (machine busy time,
   * /proc/stat, minus the server, this process and, while it floods, the
   * abuser), % of one core; and the hypervisor's steal. Null if unreadable.
   */
  otherCpuPct: number | null
  stealPct: number | null
  /** The server's refusal counters gained during the phase (all clients: in practice the abuser). */
  refusals: Refusals
  /** At the phase's end. */
  connections: number
  documentsLoaded: number
  wallSec: number
}

export interface FloodResult {
  /** The server ran on CPU SERVER_CPU, this process and the abuser on LOAD_CPU (BENCH_FLOOD_PIN, default on; needs taskset and 2 cores). */
  pinned: boolean
  /** Node flags the server ran with (oneCoreFlags when pinned, then BENCH_SERVER_NODE_ARGS's). */
  serverFlags: readonly string[]
  spec: FloodSpec
  devices: number
  phases: FloodPhase[]
  /** p50 and p99 ack latency with the abuser ÷ without (before it), and ÷ after it stopped. */
  ratio: { ackP50: number; ackP99: number; ackP50VsAfter: number; ackP99VsAfter: number }
  abuser: FloodAbuserReport
  /** The abuser's flood rate, and its CPU over it as % of one core. */
  abuserSentPerSec: number
  abuserCpuPct: number
  /** The abuser's nice (ABUSER_NICE), or null when it ran at this process's priority. */
  abuserNice: number | null
  /** An import's clips acknowledged, and when the last was (s after it began), or null if it did not finish. */
  importAcked: number
  importDoneSec: number | null
  /** Clips a fresh device of user 0 found on the server, against what user 0's devices had acked (min) and sent (max). */
  normalClips: { found: number; min: number; max: number }
  /** Clips a fresh device of the abuser's user found: at least what was acked ok, at most that plus what was never answered. */
  abuserClips: { found: number; min: number; max: number }
  deviceErrors: string[]
  abuserStderr: string[]
  serverStartMs: number
  /** The whole run (server start to teardown), s. */
  wallSec: number
}

export const ABUSER_USER = 'bench-flood-abuser'
/** The share of its plan's socket rate an importer uses. */
const IMPORT_PACE = 0.9
/** How long an import may take past its phase before the run goes on without it. */
const IMPORT_WAIT_MS = 60_000
const ABUSER_SCRIPT = path.join(REPO_ROOT, 'scripts/bench/flood-abuser.ts')
/**
 * The abuser runs at the lowest priority (nice 19), every thread of it. It
 * shares a core with this process (pinned), and this process times the
 * acks: while an importer or a flood ran at the same priority, this
 * process's event loop lagged behind (its delay p99 rose from 14 to 16–19 ms
 * in the phase with the abuser), and every ack read then was timed late. At
 * nice 19 the abuser still floods with all the CPU this process does not use
 * (about three quarters). Started under `nice` (coreutils): lowering a
 * running process on Linux reaches only the thread whose id is its pid, not
 * the threads Node has started by then.
 */
const ABUSER_NICE = 19
const NICE_BIN = ['/usr/bin/nice', '/bin/nice'].find((bin) => existsSync(bin))

type AbuserProcess = ChildProcessByStdio<Writable, Readable, Readable>

/** The abuser's child process and the JSON lines it prints. */
class Abuser {
  private readonly child: AbuserProcess
  private readonly lines: unknown[] = []
  private waiter: (() => void) | undefined
  readonly stderr: string[] = []
  private exited = false
  /** The abuser's scheduling priority (nice), or null when `nice` is missing (it runs at this process's). */
  readonly nice: number | null

  constructor(url: string, token: string, spec: FloodSpec) {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      FLOOD_URL: url,
      FLOOD_TOKEN: token,
      FLOOD_WINDOW: String(spec.abuserWindow),
      FLOOD_CLIENTS: spec.abuserClients,
      FLOOD_MODE: spec.mode,
      FLOOD_IMPORT_CLIPS: String(spec.importClips),
      // An importer paces itself a little under its plan's socket rate (its clock and the server's differ); a flood ignores it.
      ...(spec.mode === 'import'
        ? {
            FLOOD_RATE: String(IMPORT_PACE * PLANS[spec.abuserPlan].socketEvents.perSecond),
            FLOOD_BURST: String(Math.floor(IMPORT_PACE * PLANS[spec.abuserPlan].socketEvents.burst)),
          }
        : {}),
    }
    delete env.NODE_OPTIONS
    const node = [process.execPath, '--import', 'tsx', ABUSER_SCRIPT]
    const [command, ...args] = NICE_BIN ? [NICE_BIN, '-n', String(ABUSER_NICE), ...node] : node
    this.child = spawn(command as string, args, { cwd: REPO_ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] })
    trackChild(this.child)
    this.nice = NICE_BIN ? ABUSER_NICE : null
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      try {
        this.lines.push(JSON.parse(line))
      } catch {
        this.stderr.push(`stdout: ${line}`)
      }
      this.waiter?.()
    })
    createInterface({ input: this.child.stderr }).on('line', (line) => {
      if (this.stderr.length < 50) this.stderr.push(line)
    })
    this.child.once('exit', () => {
      this.exited = true
      this.waiter?.()
    })
  }

  /** The next line of `type`, waiting up to `ms`. */
  async line(type: string, ms: number): Promise<Record<string, unknown>> {
    const deadline = performance.now() + ms
    for (;;) {
      const i = this.lines.findIndex((l) => (l as { type?: unknown }).type === type)
      if (i >= 0) return this.lines.splice(i, 1)[0] as Record<string, unknown>
      if (this.exited) throw new Error(`flood abuser exited before "${type}": ${this.stderr.join('\n')}`)
      const left = deadline - performance.now()
      if (left <= 0) throw new Error(`flood abuser: no "${type}" within ${ms} ms: ${this.stderr.join('\n')}`)
      await Promise.race([new Promise<void>((resolve) => (this.waiter = resolve)), sleep(left)])
      this.waiter = undefined
    }
  }

  send(command: 'go' | 'stop'): void {
    this.child.stdin.write(`${command}\n`)
  }

  kill(): void {
    if (!this.exited) this.child.kill('SIGKILL')
  }
}

const refusalDelta = (a: Refusals, b: Refusals): Refusals => ({
  rateLimited: b.rateLimited - a.rateLimited,
  invalid: b.invalid - a.invalid,
  disconnected: b.disconnected - a.disconnected,
  authFailures: b.authFailures - a.authFailures,
  connectionsRefused: b.connectionsRefused - a.connectionsRefused,
})

/** Sends and acks of user 0's devices over the whole run, for the final check. */
interface UserZero {
  sent: number
  acked: number
}

/**
 * Every device makes one clip per `periodMs` for `ms` (one update in flight);
 * resolves with the tally and the late sends once every send is answered.
 */
async function pacedLoad(devices: readonly BenchDevice[], periodMs: number, ms: number, user0: UserZero) {
  const tally = new SendTally()
  const early: number[] = []
  const later: number[] = []
  const t0 = performance.now()
  const deadline = t0 + ms
  const runs = await Promise.all(
    devices.map((d, i) =>
      paced(periodMs, t0 + (i * periodMs) / devices.length, deadline, (answered) => {
        const update = d.addClips(1)
        const at = performance.now()
        tally.sent++
        const mine = d.userId === 'bench-user-0'
        if (mine) user0.sent++
        d.sendUpdate(update, (reply) => {
          tally.answered(at, reply.ok, reply.error)
          if (reply.ok) (at - t0 < SPLIT_MS ? early : later).push(performance.now() - at)
          if (mine && reply.ok) user0.acked++
          answered()
        })
      }),
    ),
  )
  return { tally, early, later, lateSends: runs.reduce((n, r) => n + r.late, 0), t0, t1: performance.now() }
}

const split = (ackMs: readonly number[]): LatencySplit => ({
  acked: ackMs.length,
  ackP50Ms: percentile(ackMs, 50),
  ackP99Ms: percentile(ackMs, 99),
})

async function measurePhase(
  name: FloodPhaseName,
  server: ServerHandle,
  devices: readonly BenchDevice[],
  spec: FloodSpec,
  user0: UserZero,
  atStart?: () => void,
): Promise<FloodPhase> {
  const m0 = await server.metrics(true)
  const loop = monitorEventLoopDelay({ resolution: 10 })
  loop.enable()
  const machine0 = await machineCpu()
  const cpu0 = await server.cpu()
  const bench0 = process.cpuUsage()
  atStart?.()
  const { tally, early, later, lateSends, t0, t1 } = await pacedLoad(devices, spec.periodMs, spec.phaseMs, user0)
  const bench = process.cpuUsage(bench0)
  const cpu1 = await server.cpu()
  const machine1 = await machineCpu()
  loop.disable()
  const m1 = await server.metrics(false)
  const windowUs = (t1 - t0) * 1000
  const serverUs = cpu1.userUs + cpu1.systemUs - cpu0.userUs - cpu0.systemUs
  return {
    name,
    ...tally.summary(),
    lateSends,
    ackP50Ms: percentile(tally.ackMs, 50),
    ackP99Ms: percentile(tally.ackMs, 99),
    ackMaxMs: percentile(tally.ackMs, 100),
    ackedPerSec: tally.acked / (spec.phaseMs / 1000),
    bySendTime: { splitMs: SPLIT_MS, first: split(early), rest: split(later) },
    serverLoop: m1.eventLoopDelayMs,
    serverCpuPct: (serverUs / windowUs) * 100,
    benchCpuPct: ((bench.user + bench.system) / windowUs) * 100,
    benchLoopMaxMs: loop.max / 1e6,
    benchLoopP99Ms: loop.percentile(99) / 1e6,
    // The abuser's share is subtracted by runFlood once it has reported its CPU.
    // Clamped at 0: /proc/stat and /proc/pid/stat count in 10 ms ticks, so a quiet machine can come out a few % below.
    otherCpuPct:
      machine0 && machine1 ? Math.max(0, ((machine1.busyUs - machine0.busyUs - serverUs - bench.user - bench.system) / windowUs) * 100) : null,
    stealPct: machine0 && machine1 ? ((machine1.stealUs - machine0.stealUs) / windowUs) * 100 : null,
    refusals: refusalDelta(m0.refusals, m1.refusals),
    connections: m1.connections,
    documentsLoaded: m1.documentsLoaded,
    wallSec: (t1 - t0) / 1000,
  }
}

/**
 * Node flags of the server pinned to one core: the README's advice for a
 * one-core deployment, `--single-threaded-gc` (BENCH_FLOOD_GC=default runs
 * V8's defaults instead). With the defaults, V8's four GC helper threads
 * share the one core with the event loop while they mark: the first major
 * GC of a run held every ack 130-250 ms (docs/benchmarks.md).
 */
function oneCoreFlags(): string[] {
  return process.env.BENCH_FLOOD_GC === 'default' ? [] : ['--single-threaded-gc']
}

/** The flood run: its own server over a fresh data dir, torn down at the end. */
export async function runFlood(spec: FloodSpec, progress: (line: string) => void = () => {}): Promise<FloodResult> {
  const started = performance.now()
  const dir = await makeTempDir('superclip-bench-data-')
  // The load (this process, and the abuser it spawns) on one core, the server on the other, as in bench:peers:
  // unpinned, the importer's and the devices' CPU took the server's core from it at random moments.
  const unpin = process.env.BENCH_FLOOD_PIN === '0' ? undefined : await pinSelf(LOAD_CPU)
  const pinned = unpin !== undefined
  let server: ServerHandle
  try {
    server = await startServer(dir, {}, pinned ? { cpus: SERVER_CPU, nodeArgs: oneCoreFlags() } : {})
  } catch (err) {
    unpin?.()
    throw err
  }
  let devices: BenchDevice[] = []
  let abuser: Abuser | undefined
  try {
    const abuserToken = await signToken(BENCH_SECRET, { userId: ABUSER_USER, plan: spec.abuserPlan })
    abuser = new Abuser(server.url, abuserToken, spec)
    const abuserReady = abuser.line('ready', 30_000)
    abuserReady.catch(() => undefined) // awaited below; not unhandled meanwhile
    devices = await connectDevices(server, spec.users, spec.devicesPerUser)
    await abuserReady
    const user0: UserZero = { sent: 0, acked: 0 }

    progress(`flood: warm-up ${spec.warmupMs / 1000} s ...`)
    await pacedLoad(devices, spec.periodMs, spec.warmupMs, user0)
    const phases: FloodPhase[] = []
    progress(`flood: ${devices.length} devices without the abuser, ${spec.phaseMs / 1000} s ...`)
    phases.push(await measurePhase('without abuser', server, devices, spec, user0))
    progress(`flood: ${devices.length} devices with the abuser (${spec.abuserPlan} plan, ${spec.abuserWindow} in flight), ${spec.phaseMs / 1000} s ...`)
    const running = abuser
    phases.push(await measurePhase('with abuser', server, devices, spec, user0, () => running.send('go')))
    if (spec.mode === 'import') {
      progress(`flood: waiting for the import of ${spec.importClips} clips to finish ...`)
      await abuser.line('done', IMPORT_WAIT_MS).catch(() => undefined) // an unfinished import is reported, not thrown
    }
    abuser.send('stop')
    const report = (await abuser.line('report', 15_000)) as unknown as FloodAbuserReport
    const flooded = phases[1]
    if (flooded && flooded.otherCpuPct !== null) {
      // The abuser's CPU was measured from `go` to `stop`, a little longer than the phase: subtract its rate.
      flooded.otherCpuPct = Math.max(0, flooded.otherCpuPct - (report.floodCpuUs / (report.floodSec * 1e6)) * 100)
    }
    progress(`flood: ${devices.length} devices after the abuser stopped, ${spec.phaseMs / 1000} s ...`)
    phases.push(await measurePhase('after abuser stopped', server, devices, spec, user0))

    const normalFound = await clipsOnServer(server, 'bench-user-0')
    const abuserFound = await clipsAfterBan(server, ABUSER_USER)
    const [without, withAbuser, after] = phases
    return {
      pinned,
      serverFlags: server.nodeArgs,
      spec,
      devices: devices.length,
      phases,
      ratio: {
        ackP50: (withAbuser?.ackP50Ms ?? Number.NaN) / (without?.ackP50Ms ?? Number.NaN),
        ackP99: (withAbuser?.ackP99Ms ?? Number.NaN) / (without?.ackP99Ms ?? Number.NaN),
        ackP50VsAfter: (withAbuser?.ackP50Ms ?? Number.NaN) / (after?.ackP50Ms ?? Number.NaN),
        ackP99VsAfter: (withAbuser?.ackP99Ms ?? Number.NaN) / (after?.ackP99Ms ?? Number.NaN),
      },
      abuser: report,
      importAcked: spec.mode === 'import' ? report.ackedOk : 0,
      importDoneSec: report.importDoneSec,
      abuserSentPerSec: report.sent / report.floodSec,
      abuserCpuPct: (report.floodCpuUs / (report.floodSec * 1e6)) * 100,
      abuserNice: abuser.nice,
      normalClips: { found: normalFound, min: user0.acked, max: user0.sent },
      abuserClips: {
        found: abuserFound,
        min: report.ackedOk,
        max: report.ackedOk + report.unansweredAtDisconnect + report.unansweredAtStop,
      },
      deviceErrors: devices.flatMap((d) => d.errors.map((e) => `${d.deviceId}: ${e}`)).slice(0, 5),
      abuserStderr: abuser.stderr.slice(0, 10),
      serverStartMs: server.startMs,
      wallSec: (performance.now() - started) / 1000,
    }
  } finally {
    unpin?.()
    abuser?.kill()
    for (const d of devices) d.close()
    await server.stop()
    await removeTempDir(dir)
  }
}

/** The flood runs one after the other, each on its own server. */
export async function runFloods(specs: readonly FloodSpec[], progress: (line: string) => void = () => {}): Promise<FloodResult[]> {
  const results: FloodResult[] = []
  for (const spec of specs) {
    progress(`flood: ${spec.name} ...`)
    results.push(await runFlood(spec, progress))
  }
  return results
}
