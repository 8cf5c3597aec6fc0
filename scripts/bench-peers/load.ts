/**
 * The load of the fan-out workloads (1 and 2) of `npm run bench:peers`,
 * spread over child processes (load-worker.ts), so that no single process
 * runs all the clients. The bench process only coordinates: it hands each
 * worker its share of a round's devices (round-robin over the devices), starts
 * them together, and sums what they report: first edit, last arrival, clips
 * held, problems and each one's own CPU over the round.
 *
 * The workers inherit the bench process's CPU affinity (the load CPU when
 * pinned, see servers.ts), so on a 2-core machine they share one core: the
 * spreading then takes no CPU from the server, and the figure that matters is
 * the sum of the load processes' CPU against that one core (see LOAD_BOUND_PCT).
 */
import { fork, type ChildProcess } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { trackChild } from '../bench/server.js'
import type { TargetName } from './servers.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))

/**
 * A round counts as load-bound when any load process (a worker, or the bench
 * process itself), or all of them together on a shared core, used more than
 * this % of one core over the measured interval: then the clients, not the
 * server, may be what set the pace.
 */
export const LOAD_BOUND_PCT = 90

/** Load processes for the fan-out workloads (BENCH_PEERS_LOAD_PROCS overrides). */
export const LOAD_PROCS = Math.max(1, Number(process.env.BENCH_PEERS_LOAD_PROCS ?? '') || 2)

/**
 * Node flags of the workers: a larger young generation (fewer scavenges: the
 * clients allocate a Y.Doc, a socket and every message per device), plus
 * BENCH_PEERS_LOAD_NODE_ARGS (e.g. `--cpu-prof --cpu-prof-dir=.bench/load-prof`).
 */
const WORKER_NODE_ARGS = ['--max-semi-space-size=32', ...(process.env.BENCH_PEERS_LOAD_NODE_ARGS ?? '').split(' ').filter(Boolean)]

/** Where the devices connect: a server, or the nodes of a cluster (`urls`, servers.ts `nodeUrl`). */
export interface LoadTarget {
  name: TargetName
  url: string
  urls?: readonly string[]
}

export type LoadRequest =
  | { type: 'connect'; server: LoadTarget; ids: { userId: string; deviceId: string }[]; clipsPerDevice: number }
  | { type: 'go'; clipsPerDevice: number; expected: number; timeoutMs: number }
  | { type: 'cpu' }
  | { type: 'finish'; ackTimeoutMs: number }

export type LoadReply =
  | { type: 'ready' }
  | { type: 'connected'; connectMs: number }
  | { type: 'done'; t0: number; t1: number; sent: number; held: number; short: number }
  | { type: 'cpu'; cpuUs: number }
  | { type: 'finished'; problems: string[] }

type ReplyOf<T extends LoadReply['type']> = Extract<LoadReply, { type: T }>

class Worker {
  private seq = 0
  private pending = new Map<number, { resolve: (r: LoadReply) => void; reject: (e: Error) => void }>()
  readonly ready: Promise<void>

  constructor(
    readonly index: number,
    private readonly child: ChildProcess,
  ) {
    let onReady: () => void = () => undefined
    this.ready = new Promise((resolve) => (onReady = resolve))
    child.on('message', (msg: { seq: number; reply?: LoadReply; error?: string }) => {
      if (msg.seq === 0) return onReady()
      const p = this.pending.get(msg.seq)
      if (!p) return
      this.pending.delete(msg.seq)
      if (msg.error !== undefined || !msg.reply) p.reject(new Error(`load process ${index}: ${msg.error ?? 'no reply'}`))
      else p.resolve(msg.reply)
    })
    child.once('exit', (code) => {
      for (const p of this.pending.values()) p.reject(new Error(`load process ${index} exited (code ${code})`))
      this.pending.clear()
    })
  }

  request<T extends LoadReply['type']>(req: LoadRequest, want: T): Promise<ReplyOf<T>> {
    const seq = ++this.seq
    return new Promise<LoadReply>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject })
      this.child.send({ seq, req })
    }).then((reply) => {
      if (reply.type !== want) throw new Error(`load process ${this.index}: expected ${want}, got ${reply.type}`)
      return reply as ReplyOf<T>
    })
  }

  close(): void {
    if (this.child.connected) this.child.disconnect()
  }
}

export interface LoadRound {
  /** Earliest first edit to latest arrival over all load processes, ms. */
  wallMs: number
  /** Connecting and syncing all devices, ms (the slowest process). */
  connectMs: number
  sent: number
  /** Devices that did not hold all their user's clips within the timeout. */
  short: number
  /** CPU of each load process (bench process first, then the workers) from `go` to the last arrival, % of one core. */
  procCpuPct: number[]
  /** Their sum, % of one core. */
  sumCpuPct: number
  /** The busiest one, % of one core. */
  maxCpuPct: number
  problems: string[]
}

/** N load processes, kept across the rounds of one workload (their JIT stays warm). */
export class LoadPool {
  private constructor(private readonly workers: Worker[]) {}

  static async start(n = LOAD_PROCS): Promise<LoadPool> {
    const workers = Array.from({ length: n }, (_, i) => {
      const child = fork(path.join(HERE, 'load-worker.ts'), [], {
        execArgv: [...process.execArgv, ...WORKER_NODE_ARGS],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      })
      trackChild(child)
      return new Worker(i, child)
    })
    await Promise.all(workers.map((w) => w.ready))
    return new LoadPool(workers)
  }

  get size(): number {
    return this.workers.length
  }

  /**
   * One fan-out round: devices `ids` (round-robin over the workers) connect;
   * then all make `clipsPerDevice` clips each at once. `during` runs once every
   * device held `expected` clips (or timed out), before they close (the
   * settle time). `onMeasured` runs right after the last arrival was reported,
   * before `during` (the server's CPU is read there).
   */
  async round(
    server: LoadTarget,
    ids: { userId: string; deviceId: string }[],
    clipsPerDevice: number,
    expected: number,
    hooks: { onStart: () => Promise<void>; onMeasured: () => Promise<void>; during: () => Promise<void> },
  ): Promise<LoadRound> {
    const shares = this.workers.map((_, i) => ids.filter((_, j) => j % this.workers.length === i))
    const connected = await Promise.allSettled(this.workers.map((w, i) => w.request({ type: 'connect', server, ids: shares[i] ?? [], clipsPerDevice }, 'connected')))
    const failed = connected.find((c) => c.status === 'rejected')
    if (failed) {
      await Promise.allSettled(this.workers.map((w) => w.request({ type: 'finish', ackTimeoutMs: 0 }, 'finished')))
      throw new Error(`devices failed to sync: ${String(failed.reason)}`)
    }
    const connectMs = Math.max(...connected.map((c) => (c.status === 'fulfilled' ? c.value.connectMs : 0)))
    await hooks.onStart()
    const own0 = process.cpuUsage()
    const w0 = performance.now()
    const done = await Promise.all(this.workers.map((w) => w.request({ type: 'go', clipsPerDevice, expected, timeoutMs: 60_000 }, 'done')))
    const cpus = await Promise.all(this.workers.map((w) => w.request({ type: 'cpu' }, 'cpu')))
    const own = process.cpuUsage(own0)
    const intervalUs = (performance.now() - w0) * 1000
    await hooks.onMeasured()
    const t0 = Math.min(...done.map((d) => d.t0))
    const t1 = Math.max(...done.map((d) => d.t1))
    const procCpuPct = [own.user + own.system, ...cpus.map((c) => c.cpuUs)].map((us) => (us / intervalUs) * 100)
    await hooks.during()
    const finished = await Promise.all(this.workers.map((w) => w.request({ type: 'finish', ackTimeoutMs: 10_000 }, 'finished')))
    return {
      wallMs: t1 - t0,
      connectMs,
      sent: done.reduce((n, d) => n + d.sent, 0),
      short: done.reduce((n, d) => n + d.short, 0),
      procCpuPct,
      sumCpuPct: procCpuPct.reduce((a, b) => a + b, 0),
      maxCpuPct: Math.max(...procCpuPct),
      problems: finished.flatMap((f) => f.problems),
    }
  }

  close(): void {
    for (const w of this.workers) w.close()
  }
}
