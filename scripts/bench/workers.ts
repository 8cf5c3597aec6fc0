/**
 * Load processes for the benchmark parts whose clients must not share a
 * process with the bench (reconnect.ts, sdk-cost.ts): a forked worker script
 * (run through the same tsx loader as the bench), pinned to the load CPU when
 * taskset can, answering requests over IPC, with its CPU readable from /proc
 * at any moment (so that it can be sampled while the worker is busy).
 *
 * The worker side is `serveRequests(handle)`: every `{ seq, req }` message is
 * answered with `{ seq, reply }` or `{ seq, error }`; `{ seq: 0 }` says it is
 * ready.
 */
import { execFileSync, fork, type ChildProcess } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { clockTicksPerSecond, pinProcess, trackChild } from './server.js'

/** Where the server runs and where the load runs, when pinned (as bench-peers does: the server gets a core of its own). */
export const SERVER_CPU = '0'
export const LOAD_CPU = '1'

/** Whether pinning can work here: at least two CPUs and a taskset that runs (read-only probe of this process's mask). */
export function canPin(cpus: number): boolean {
  if (cpus < 2) return false
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/**
 * CPU µs used by every load process (and other helper process, e.g. a peer
 * server) the run started, read just before each was stopped: for the full
 * run's account of what else used the machine.
 */
export const loadCpuTotal = { us: 0 }

export class WorkerProcess<Req, Reply> {
  private seq = 0
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>()
  readonly ready: Promise<void>
  readonly pid: number
  private exited = false

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
  ) {
    const pid = child.pid
    if (pid === undefined) throw new Error(`${name}: did not spawn`)
    this.pid = pid
    let onReady: () => void = () => undefined
    let onFail: (e: Error) => void = () => undefined
    this.ready = new Promise((resolve, reject) => {
      onReady = resolve
      onFail = reject
    })
    child.on('message', (msg: { seq: number; reply?: Reply; error?: string }) => {
      if (msg.seq === 0) return onReady()
      const p = this.pending.get(msg.seq)
      if (!p) return
      this.pending.delete(msg.seq)
      if (msg.error !== undefined || msg.reply === undefined) p.reject(new Error(`${name}: ${msg.error ?? 'no reply'}`))
      else p.resolve(msg.reply)
    })
    child.once('exit', (code, signal) => {
      this.exited = true
      const err = new Error(`${name} exited (code ${code}, signal ${signal})`)
      onFail(err)
      for (const p of this.pending.values()) p.reject(err)
      this.pending.clear()
    })
  }

  /** Forks `script` (a .ts file, run with this process's execArgv: the tsx loader), pinned to `cpus` if given and possible. */
  static async start<Req, Reply>(name: string, script: string, options: { cpus?: string; nodeArgs?: string[]; env?: Record<string, string> } = {}): Promise<WorkerProcess<Req, Reply>> {
    const env: NodeJS.ProcessEnv = { ...process.env, ...options.env }
    delete env.NODE_OPTIONS
    const child = fork(script, [], {
      execArgv: [...process.execArgv, ...(options.nodeArgs ?? [])],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env,
    })
    trackChild(child)
    const worker = new WorkerProcess<Req, Reply>(name, child)
    if (options.cpus !== undefined) pinProcess(worker.pid, options.cpus)
    await worker.ready
    return worker
  }

  request(req: Req): Promise<Reply> {
    if (this.exited) return Promise.reject(new Error(`${this.name} has exited`))
    const seq = ++this.seq
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(seq, { resolve, reject })
      this.child.send({ seq, req })
    })
  }

  /** CPU time of the process, all threads, µs (see cpuOf). */
  cpuUs(): number {
    return cpuOfSync(this.pid) ?? Number.NaN
  }

  /** Disconnects the IPC channel (the worker exits on it) and waits for the exit; SIGKILL after `ms`. */
  async stop(ms = 5000): Promise<void> {
    if (this.exited) return
    loadCpuTotal.us += cpuOfSync(this.pid) ?? 0
    const exit = new Promise<void>((resolve) => this.child.once('exit', () => resolve()))
    if (this.child.connected) this.child.disconnect()
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms)
    await exit
    clearTimeout(timer)
  }
}

/** The worker side: answers each request with `handle`'s result, exits when the bench process goes away. */
export function serveRequests<Req, Reply>(handle: (req: Req) => Promise<Reply>): void {
  process.on('message', (msg: { seq: number; req: Req }) => {
    handle(msg.req).then(
      (reply) => process.send?.({ seq: msg.seq, reply }),
      (err: unknown) => process.send?.({ seq: msg.seq, error: err instanceof Error ? (err.stack ?? err.message) : String(err) }),
    )
  })
  process.on('disconnect', () => process.exit(0))
  process.send?.({ seq: 0 })
}

/** Epoch ms from performance.now(): comparable across processes (to within a millisecond or so). */
export const epochNow = (): number => performance.timeOrigin + performance.now()

export interface CpuSeries {
  /** Peak CPU over one sampling interval, % of one core. */
  peakPct: number
  /** CPU from the first sample to the last, µs. */
  totalUs: number
  /** totalUs over the sampled wall time, % of one core. */
  meanPct: number
  /** Wall time of the intervals at or over SATURATED_PCT, ms. */
  saturatedMs: number
}

/** An interval at or over this % of one core counts as saturated (CpuSeries.saturatedMs). */
export const SATURATED_PCT = 90

/**
 * Samples the CPU of some processes every `intervalMs` (cpuOfSync: thread run
 * times from /proc, read synchronously, each reading stamped when it was
 * taken, so that a late timer or a busy bench process skews no rate).
 * Processes can be added while it runs (a restarted server); one that exits
 * keeps what was read before. A series may hold several pids (e.g. the load
 * processes sharing one core): its rate is the sum of theirs.
 */
export class CpuSampler {
  private readonly series = new Map<string, { pids: number[]; total: number; peak: number; saturatedMs: number; since: number; until: number }>()
  /** The last reading of each pid: CPU µs, and performance.now() when read. */
  private readonly last = new Map<number, { us: number; at: number }>()
  private timer: ReturnType<typeof setInterval> | undefined
  /** Each full-length interval: its length and every series' rate over it, % of one core. */
  private readonly rounds: { ms: number; pct: Map<string, number> }[] = []

  constructor(private readonly intervalMs = 100) {}

  /**
   * Time `a` was saturated (≥ SATURATED_PCT) while `b` was not (and, with
   * `whileBMissing`, while `b` was not sampled yet): when the clients were
   * the bottleneck and the server had room. Ms.
   */
  saturatedAloneMs(a: string, b: string, options: { whileBMissing?: boolean } = {}): number {
    let ms = 0
    for (const r of this.rounds) {
      const pa = r.pct.get(a)
      const pb = r.pct.get(b)
      if (pb === undefined && !options.whileBMissing) continue
      if (pa !== undefined && pa >= SATURATED_PCT && (pb === undefined || pb < SATURATED_PCT)) ms += r.ms
    }
    return ms
  }

  /** Adds a series of one or more pids (its CPU is their sum), starting from their last reading (or one taken now). */
  track(name: string, pids: number[]): void {
    const now = performance.now()
    for (const pid of pids) {
      if (this.last.has(pid)) continue
      const us = cpuOfSync(pid)
      if (us !== undefined) this.last.set(pid, { us, at: performance.now() })
    }
    this.series.set(name, { pids, total: 0, peak: 0, saturatedMs: 0, since: now, until: now })
  }

  /** Adds a process to a series, e.g. a server spawned just now (`baseUs` 0: every µs it used counts). */
  addPid(name: string, pid: number, baseUs = 0): void {
    const now = performance.now()
    this.last.set(pid, { us: baseUs, at: now })
    const s = this.series.get(name)
    if (s) s.pids.push(pid)
    else this.series.set(name, { pids: [pid], total: 0, peak: 0, saturatedMs: 0, since: now, until: now })
  }

  start(): void {
    this.timer = setInterval(() => this.sample(), this.intervalMs)
  }

  stop(): Record<string, CpuSeries> {
    clearInterval(this.timer)
    this.sample()
    const out: Record<string, CpuSeries> = {}
    for (const [name, s] of this.series) {
      const wallUs = (s.until - s.since) * 1000
      out[name] = { peakPct: s.peak, totalUs: s.total, meanPct: wallUs > 0 ? (s.total / wallUs) * 100 : Number.NaN, saturatedMs: s.saturatedMs }
    }
    return out
  }

  /** Takes a sample now (e.g. right before a series is added, so that it starts from this reading). */
  sample(): void {
    // One reading per pid, shared by every series that holds it.
    const readings = new Map<number, { deltaUs: number; dtMs: number }>()
    for (const s of this.series.values()) {
      for (const pid of s.pids) {
        if (readings.has(pid)) continue
        const prev = this.last.get(pid)
        const us = cpuOfSync(pid)
        const at = performance.now()
        if (us === undefined || prev === undefined) continue
        // A thread that exited takes its time with it: never count backwards.
        readings.set(pid, { deltaUs: Math.max(0, us - prev.us), dtMs: at - prev.at })
        this.last.set(pid, { us, at })
      }
    }
    const now = performance.now()
    const round = { ms: 0, pct: new Map<string, number>() }
    for (const [name, s] of this.series) {
      let delta = 0
      let pct = 0
      let shortest = Infinity
      for (const pid of s.pids) {
        const r = readings.get(pid)
        if (!r) continue
        delta += r.deltaUs
        if (r.dtMs > 0) pct += (r.deltaUs / (r.dtMs * 1000)) * 100
        shortest = Math.min(shortest, r.dtMs)
      }
      s.total += delta
      // Intervals much shorter than asked for (stop() right after a sample) say little.
      if (shortest !== Infinity && shortest >= this.intervalMs * 0.8) {
        s.peak = Math.max(s.peak, pct)
        if (pct >= SATURATED_PCT) s.saturatedMs += now - s.until
        round.pct.set(name, pct)
        round.ms = Math.max(round.ms, now - s.until)
      }
      s.until = now
    }
    if (round.pct.size > 0) this.rounds.push(round)
  }
}

/**
 * CPU time of a process, µs: the run time of each of its threads from
 * /proc/<pid>/task/<tid>/schedstat (nanoseconds, so that a 100 ms interval is
 * not read in 10 ms ticks), or utime+stime of /proc/<pid>/stat (10 ms ticks)
 * when schedstat is missing. Undefined once the process is gone.
 */
function cpuOfSync(pid: number): number | undefined {
  try {
    let ns = 0
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0])
      } catch {
        // the thread has just exited
      }
    }
    if (Number.isFinite(ns) && ns > 0) return ns / 1000
  } catch {
    // no schedstat, or the process is gone
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * (1e6 / clockTicksPerSecond())
  } catch {
    return undefined
  }
}
