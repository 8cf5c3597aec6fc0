/**
 * SDK cost (issue 12, `BENCH_ONLY=sdk`): the client CPU per update sent and
 * per update received of our SDK (`@superclip/sync-client` against our
 * server) next to y-websocket's `WebsocketProvider` (against y-websocket's
 * own server, bench-peers' ywebsocket-server.mjs, installed into .bench/peers
 * by bench-peers' install.ts), on the same edits: one client process makes N
 * new clips (a `Y.Map` of five fields each, one transaction each), another
 * client process of the same user / room receives them. Each process's
 * process.cpuUsage() over the run, ÷ N, and the time from the first edit to
 * the last clip arriving; the server's CPU per edit beside them.
 *
 * Two ways of editing: `paced` (PACED_PER_SEC edits a second, so that every
 * edit travels alone with both clients) and `burst` (one edit per turn of the
 * sender's event loop, as fast as it goes: our SDK then merges what waits
 * behind its 8 unacknowledged updates; y-websocket sends every update at
 * once). Three clients: the SDK as an app uses it (`clips.create(fields)`,
 * the SDK makes the id), the SDK given the id (`crypto.randomUUID()`, as the
 * y-websocket sender makes it: what the id costs), and y-websocket.
 *
 * Each kind runs in its own two worker processes (sdk-worker.ts), kept for
 * the whole part (JIT warm), a warm-up of WARMUP edits before each measured
 * run; every run is a new user / room. Rounds alternate the order of the
 * clients. When taskset can pin, the servers run on CPU 0 and the client
 * processes (sender and receiver together) on CPU 1.
 */
import os from 'node:os'
import path from 'node:path'
import { signToken } from '../../src/services/token.service.js'
import { ensurePeers } from '../bench-peers/install.js'
import { pinning, startYWebsocket, type TargetServer } from '../bench-peers/servers.js'
import { REPO_ROOT } from '../lib/server-process.js'
import type { SdkReply, SdkRequest, SdkTarget } from './sdk-worker.js'
import { BENCH_ADMIN_TOKEN, BENCH_SECRET, makeTempDir, pinProcess, removeTempDir, startServer, type ServerHandle } from './server.js'
import { fmt, median, table } from './stats.js'
import { canPin, epochNow, LOAD_CPU, loadCpuTotal, SATURATED_PCT, SERVER_CPU, WorkerProcess } from './workers.js'

export type SdkMode = 'paced' | 'burst'

export interface SdkCostSpec {
  /** Measured edits per run, by mode. */
  edits: Record<SdkMode, number>
  /** Unmeasured edits before each run, same mode. */
  warmup: number
  /** Unmeasured rounds first (every client, every mode): the JIT of every process warm before anything counts. */
  warmupRounds: number
  /** Edits per second in the `paced` mode. */
  pacedPerSec: number
  rounds: number
  modes: SdkMode[]
}

export interface SdkVariant {
  name: string
  target: SdkTarget
  ids: 'sdk' | 'given'
}

export const SDK_VARIANTS: readonly SdkVariant[] = [
  { name: 'SDK', target: 'ours', ids: 'sdk' },
  { name: 'SDK, ids given', target: 'ours', ids: 'given' },
  { name: 'y-websocket', target: 'y-websocket', ids: 'sdk' },
]

export interface SdkRun {
  variant: string
  mode: SdkMode
  /** Negative: a warm-up round (not in the summary). */
  round: number
  edits: number
  /** Client CPU ÷ edits, µs: the sender from its first edit until every edit was acknowledged (ours) or the last arrived; the receiver until the last arrived. */
  senderUsPerEdit: number
  receiverUsPerEdit: number
  /** The server's CPU (utime+stime, /proc) from the first edit to the last arrival ÷ edits, µs. */
  serverUsPerEdit: number
  /** First edit → the last clip at the receiver, ms; and first → last edit made. */
  wallMs: number
  madeMs: number
  editsPerSec: number
  /** Over the wall time, % of one core. */
  senderCpuPct: number
  receiverCpuPct: number
  serverCpuPct: number
  /** Ours: Yjs updates the server stored over the run (the SDK merges edits that wait), else null. */
  serverWrites: number | null
  /** Clips the receiver held at the end (warm-up + edits expected). */
  held: number
  expected: number
  /** Edits still pending at the sender at the end (ours). */
  pendingAtEnd: number
}

export interface SdkSummary {
  variant: string
  mode: SdkMode
  senderUsPerEdit: number
  receiverUsPerEdit: number
  serverUsPerEdit: number
  wallMs: number
  editsPerSec: number
  senderCpuPct: number
  receiverCpuPct: number
  serverCpuPct: number
  serverWrites: number | null
  /** The clients' core (sender + receiver) was at SATURATED_PCT or more over the run, in the median run. */
  clientBound: boolean
}

export interface SdkCostResult {
  spec: SdkCostSpec
  pinned: boolean
  runs: SdkRun[]
  /** Medians over the rounds, per variant and mode. */
  summary: SdkSummary[]
  /** Ours ÷ y-websocket, per mode, from the medians: sender, receiver and server CPU per edit, time for all to arrive. */
  ratios: { variant: string; mode: SdkMode; sender: number; receiver: number; server: number; wall: number }[]
  wallSec: number
}

const WORKER_SCRIPT = path.join(REPO_ROOT, 'scripts/bench/sdk-worker.ts')

type Worker = WorkerProcess<SdkRequest, SdkReply>

async function ask<T extends SdkReply['type']>(w: Worker, req: SdkRequest, want: T): Promise<Extract<SdkReply, { type: T }>> {
  const reply = await w.request(req)
  if (reply.type !== want) throw new Error(`${w.name}: expected ${want}, got ${reply.type}`)
  return reply as Extract<SdkReply, { type: T }>
}

/** `superclip_writes_applied_total{path="yjs"}` of our server (GET /metrics). */
async function ourYjsWrites(server: ServerHandle): Promise<number> {
  const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` }, signal: AbortSignal.timeout(10_000) })
  const text = await res.text()
  const m = /^superclip_writes_applied_total\{path="yjs"\} (\d+)/m.exec(text)
  return m ? Number(m[1]) : Number.NaN
}

interface Pair {
  sender: Worker
  receiver: Worker
}

interface Target {
  url: string
  cpuUs: () => Promise<number>
  writes: () => Promise<number | null>
}

async function runOne(pair: Pair, target: Target, variant: SdkVariant, mode: SdkMode, round: number, spec: SdkCostSpec): Promise<SdkRun> {
  const room = `sdk-${mode}-${round}-${variant.target}-${variant.ids}`
  const token = await signToken(BENCH_SECRET, { userId: room, plan: 'pro' })
  const connect = (w: Worker, deviceId: string) => ask(w, { type: 'connect', target: variant.target, url: target.url, room, token, deviceId, ids: variant.ids }, 'connected')
  await Promise.all([connect(pair.receiver, `${room}-recv`), connect(pair.sender, `${room}-send`)])
  const perSec = mode === 'paced' ? spec.pacedPerSec : null
  const timeoutMs = 60_000
  try {
    // Warm-up: the same edits, unmeasured; everything arrived and acknowledged before the run.
    const warm = ask(pair.receiver, { type: 'expect', count: spec.warmup, timeoutMs }, 'expected')
    await ask(pair.sender, { type: 'edit', count: spec.warmup, from: 0, perSec }, 'edited')
    await warm
    await ask(pair.sender, { type: 'settle', timeoutMs }, 'settled')

    await Promise.all([ask(pair.receiver, { type: 'mark' }, 'marked'), ask(pair.sender, { type: 'mark' }, 'marked')])
    const writes0 = await target.writes()
    const server0 = await target.cpuUs()
    const n = spec.edits[mode]
    const expected = spec.warmup + n
    const received = ask(pair.receiver, { type: 'expect', count: expected, timeoutMs }, 'expected')
    const made = await ask(pair.sender, { type: 'edit', count: n, from: spec.warmup, perSec }, 'edited')
    const got = await received
    const server1 = await target.cpuUs()
    const settled = await ask(pair.sender, { type: 'settle', timeoutMs }, 'settled')
    const writes1 = await target.writes()
    const end = got.at ?? epochNow()
    const wallMs = end - made.startedAt
    return {
      variant: variant.name,
      mode,
      round,
      edits: n,
      senderUsPerEdit: settled.cpuUs / n,
      receiverUsPerEdit: got.cpuUs / n,
      serverUsPerEdit: (server1 - server0) / n,
      wallMs,
      madeMs: made.madeAt - made.startedAt,
      editsPerSec: n / (wallMs / 1000),
      senderCpuPct: (settled.cpuUs / ((settled.at - made.startedAt) * 1000)) * 100,
      receiverCpuPct: (got.cpuUs / (wallMs * 1000)) * 100,
      serverCpuPct: ((server1 - server0) / (wallMs * 1000)) * 100,
      serverWrites: writes0 === null || writes1 === null ? null : writes1 - writes0,
      held: got.held,
      expected,
      pendingAtEnd: settled.pending,
    }
  } finally {
    await Promise.all([ask(pair.sender, { type: 'close' }, 'closed'), ask(pair.receiver, { type: 'close' }, 'closed')])
  }
}

export async function runSdkCost(spec: SdkCostSpec, progress: (line: string) => void = () => {}): Promise<SdkCostResult> {
  const started = performance.now()
  await ensurePeers(progress)
  const pinned = canPin(os.cpus().length)
  const oursDir = await makeTempDir('superclip-bench-sdk-')
  const peerDir = await makeTempDir('superclip-bench-sdk-ywebsocket-')
  const workers: Worker[] = []
  let ours: ServerHandle | undefined
  let peer: TargetServer | undefined
  try {
    ours = await startServer(oursDir, {}, { cpus: pinned ? SERVER_CPU : undefined })
    // bench-peers' launcher: pins the peer to CPU 0 and, the first time, this process to CPU 1 (undone at the end).
    peer = await startYWebsocket(peerDir)
    const oursServer = ours
    const peerServer = peer
    const targets: Record<SdkTarget, Target> = {
      ours: { url: oursServer.url, cpuUs: async () => ((c) => c.userUs + c.systemUs)(await oursServer.cpu()), writes: () => ourYjsWrites(oursServer) },
      'y-websocket': { url: peerServer.url, cpuUs: () => peerServer.cpuUs(), writes: () => Promise.resolve(null) },
    }
    const pairs = {} as Record<SdkTarget, Pair>
    for (const target of ['ours', 'y-websocket'] as const) {
      const start = (role: string) => WorkerProcess.start<SdkRequest, SdkReply>(`sdk ${target} ${role}`, WORKER_SCRIPT, { cpus: pinned ? LOAD_CPU : undefined })
      const sender = await start('sender')
      const receiver = await start('receiver')
      workers.push(sender, receiver)
      pairs[target] = { sender, receiver }
    }

    const runs: SdkRun[] = []
    for (let round = -spec.warmupRounds; round < spec.rounds; round++) {
      for (const mode of spec.modes) {
        const order = round % 2 === 0 ? [...SDK_VARIANTS] : [...SDK_VARIANTS].reverse()
        for (const variant of order) {
          const label = round < 0 ? 'warm-up round' : `round ${round + 1}/${spec.rounds}`
          progress(`sdk: ${label}, ${mode}, ${variant.name}: ${spec.edits[mode]} edits ...`)
          runs.push(await runOne(pairs[variant.target], targets[variant.target], variant, mode, round, spec))
        }
      }
    }

    const summary: SdkSummary[] = []
    for (const mode of spec.modes) {
      for (const v of SDK_VARIANTS) {
        const mine = runs.filter((r) => r.round >= 0 && r.mode === mode && r.variant === v.name)
        const med = (f: (r: SdkRun) => number) => median(mine.map(f))
        const writes = mine.map((r) => r.serverWrites).filter((w): w is number => w !== null)
        summary.push({
          variant: v.name,
          mode,
          senderUsPerEdit: med((r) => r.senderUsPerEdit),
          receiverUsPerEdit: med((r) => r.receiverUsPerEdit),
          serverUsPerEdit: med((r) => r.serverUsPerEdit),
          wallMs: med((r) => r.wallMs),
          editsPerSec: med((r) => r.editsPerSec),
          senderCpuPct: med((r) => r.senderCpuPct),
          receiverCpuPct: med((r) => r.receiverCpuPct),
          serverCpuPct: med((r) => r.serverCpuPct),
          serverWrites: writes.length > 0 ? median(writes) : null,
          clientBound: med((r) => r.senderCpuPct + r.receiverCpuPct) >= SATURATED_PCT,
        })
      }
    }
    const ratios: SdkCostResult['ratios'] = []
    for (const mode of spec.modes) {
      const peerRow = summary.find((s) => s.mode === mode && s.variant === 'y-websocket')
      for (const s of summary.filter((x) => x.mode === mode && x.variant !== 'y-websocket')) {
        if (!peerRow) continue
        ratios.push({
          variant: s.variant,
          mode,
          sender: s.senderUsPerEdit / peerRow.senderUsPerEdit,
          receiver: s.receiverUsPerEdit / peerRow.receiverUsPerEdit,
          server: s.serverUsPerEdit / peerRow.serverUsPerEdit,
          wall: s.wallMs / peerRow.wallMs,
        })
      }
    }
    return { spec, pinned, runs, summary, ratios, wallSec: (performance.now() - started) / 1000 }
  } finally {
    await Promise.all(workers.map((w) => w.stop()))
    await ours?.stop()
    if (peer) loadCpuTotal.us += await peer.cpuUs().catch(() => 0)
    await peer?.stop()
    await removeTempDir(oursDir)
    await removeTempDir(peerDir)
    // bench-peers' pinning() moved this process to the load CPU: give it every CPU back for the parts after this one.
    if (pinning().ok && os.cpus().length > 1) pinProcess(process.pid, `0-${os.cpus().length - 1}`) // stays pinned if it fails
  }
}

// ---- report ----

export function reportSdkCost(r: SdkCostResult, log: (line?: string) => void): void {
  const s = r.spec
  log(`11. SDK cost (issue 12): client CPU per edit, our SDK against y-websocket's WebsocketProvider, each with its own server`)
  log(
    `   One sender process makes new clips (${fmt(s.edits.paced)} paced, ${fmt(s.edits.burst)} in a burst; each a Y.Map of 5 fields in one transaction;`,
  )
  log(`   ${fmt(s.warmup)} unmeasured first); one receiver process of the same user / room gets them. paced: ${fmt(s.pacedPerSec)} edits/s;`)
  log("   burst: one edit per turn of the sender's event loop.")
  log(
    `   ${r.pinned ? `Servers on CPU ${SERVER_CPU}, sender and receiver together on CPU ${LOAD_CPU} (taskset).` : 'UNPINNED: servers and clients share the cores.'}` +
      ` Medians of ${s.rounds} rounds after ${s.warmupRounds} unmeasured.`,
  )
  log(
    table(
      ['mode', 'client', 'sender µs/edit', 'receiver µs/edit', 'server µs/edit', 'all arrived ms', 'edits/s', 'sender CPU%', 'receiver CPU%', 'server CPU%', 'server writes'],
      r.summary.map((x) => [
        x.mode,
        x.variant,
        fmt(x.senderUsPerEdit, 1),
        fmt(x.receiverUsPerEdit, 1),
        fmt(x.serverUsPerEdit, 1),
        fmt(x.wallMs),
        `${fmt(x.editsPerSec)}${x.clientBound ? ' (clients saturated)' : ''}`,
        fmt(x.senderCpuPct),
        fmt(x.receiverCpuPct),
        fmt(x.serverCpuPct),
        x.serverWrites === null ? '-' : fmt(x.serverWrites),
      ]),
    ),
  )
  log('   sender µs/edit = process.cpuUsage() of the sender from its first edit until every edit was acknowledged (SDK) or, for')
  log('   y-websocket (no acks), the last one arrived, ÷ edits; receiver µs/edit = the receiver until the last clip arrived, ÷ edits.')
  log('   server = the server process (utime+stime) over first edit → last arrival. all arrived = first edit → last clip at the')
  log('   receiver. CPU% = % of one core over that time (sender: until its end). server writes = Yjs updates our server stored')
  log(`   (fewer than edits: the SDK merged edits waiting behind its 8 unacknowledged). (clients saturated): sender + receiver ≥ ${SATURATED_PCT}%`)
  log('   of their shared core: the time then measures the clients as much as the server.')
  log()
  log('   Ours ÷ y-websocket (medians)')
  log(
    table(
      ['mode', 'client', 'sender CPU/edit', 'receiver CPU/edit', 'server CPU/edit', 'time for all to arrive'],
      r.ratios.map((x) => [x.mode, x.variant, `${fmt(x.sender, 2)}x`, `${fmt(x.receiver, 2)}x`, `${fmt(x.server, 2)}x`, `${fmt(x.wall, 2)}x`]),
    ),
  )
  log()
}

export function logSdkCostChecks(r: SdkCostResult, log: (line?: string) => void): void {
  const bad = r.runs.filter((x) => x.held < x.expected || x.pendingAtEnd > 0)
  const bound = r.summary.filter((x) => x.clientBound)
  log(
    bad.length === 0
      ? `   sdk: ok: every receiver got every clip (${r.runs.length} runs), every SDK edit acknowledged`
      : `   sdk: ${bad.map((x) => `${x.variant} ${x.mode} round ${x.round + 1}: held ${x.held}/${x.expected}, ${x.pendingAtEnd} pending`).join('; ')}`,
  )
  if (bound.length > 0) {
    log(
      `   sdk: clients' core saturated (their CPU per edit stands; their "all arrived" time measures the clients): ${bound.map((x) => `${x.mode} ${x.variant}`).join(', ')}`,
    )
  }
}
