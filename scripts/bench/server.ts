/**
 * The server under test, in a child process (`node dist/index.js`, built first)
 * so that it and the benchmark's clients each get a core. Also reads the
 * child's CPU time, disk writes and memory from /proc.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { buildServer, freePort, spawnServerProcess } from '../lib/server-process.js'
import { sleep } from './stats.js'

export const BENCH_SECRET = 'superclip-bench-jwt-secret-0123456789abcdef'
/** The servers' ADMIN_TOKEN, for `GET /admin/metrics`. */
export const BENCH_ADMIN_TOKEN = 'superclip-bench-admin-token-0123456789'

const children = new Set<ChildProcess>()

/** CPU µs used by every server this run started, read just before each was stopped. */
export const serverCpuTotal = { us: 0 }

export interface MachineCpu {
  /** Busy CPU time of the whole machine (all cores, all processes), µs. */
  busyUs: number
  /** Time stolen by the hypervisor, µs. */
  stealUs: number
}

/** Machine-wide CPU counters from /proc/stat, if readable. */
export async function machineCpu(): Promise<MachineCpu | undefined> {
  try {
    const line = (await readFile('/proc/stat', 'utf8')).split('\n').find((l) => l.startsWith('cpu '))
    if (!line) return undefined
    // user nice system idle iowait irq softirq steal ...
    const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1).map(Number)
    const tick = 1e6 / clockTicksPerSecond()
    return { busyUs: (user + nice + system + irq + softirq) * tick, stealUs: steal * tick }
  } catch {
    return undefined
  }
}
const tempDirs = new Set<string>()

/** Another child process (e.g. another server under test) for cleanupSync to kill; forgotten once it exits. */
export function trackChild(child: ChildProcess): void {
  children.add(child)
  child.once('exit', () => children.delete(child))
}

/** Last-resort cleanup (bench crashed or was interrupted): kill our children, delete our temp dirs. */
export function cleanupSync(): void {
  for (const child of children) child.kill('SIGKILL')
  children.clear()
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
  tempDirs.clear()
}

export async function makeTempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix))
  tempDirs.add(dir)
  return dir
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
  tempDirs.delete(dir)
}

let clockTicks: number | undefined
/** Clock ticks per second of /proc's CPU times (getconf CLK_TCK, 100 if unknown). */
export function clockTicksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
    } catch {
      clockTicks = 100
    }
  }
  return clockTicks
}

export interface CpuTimes {
  /** utime of the process, all threads, µs (resolution 1/CLK_TCK s). */
  userUs: number
  /** stime, µs. */
  systemUs: number
}

export async function processCpu(pid: number): Promise<CpuTimes> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces) start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const tick = 1e6 / clockTicksPerSecond()
  return { userUs: Number(fields[11]) * tick, systemUs: Number(fields[12]) * tick }
}

export interface SyscallCounter {
  /** Stops counting; the number of fsync + fdatasync calls, or undefined if perf could not count them. */
  stop(): Promise<number | undefined>
}

/**
 * Counts the fsync/fdatasync calls of `pid` with `perf stat` on the syscall
 * tracepoints, if perf is installed and allowed to; otherwise counts nothing.
 * Attaching takes a moment: start it a little before what it should see.
 */
export function countFsyncs(pid: number): SyscallCounter {
  const events = ['syscalls:sys_enter_fdatasync', 'syscalls:sys_enter_fsync']
  let perf: ChildProcess
  try {
    perf = spawn('perf', ['stat', '-x', ',', '-e', events.join(','), '-p', String(pid)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    })
  } catch {
    return { stop: () => Promise.resolve(undefined) }
  }
  children.add(perf)
  let stderr = ''
  let failed = false
  perf.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')))
  perf.on('error', () => (failed = true))
  const exit = new Promise<void>((resolve) => perf.once('close', () => resolve()))
  return {
    async stop() {
      if (!failed && perf.exitCode === null) perf.kill('SIGINT')
      await Promise.race([exit, sleep(5000)])
      children.delete(perf)
      if (perf.exitCode === null) perf.kill('SIGKILL')
      if (failed) return undefined
      let total = 0
      for (const event of events) {
        const line = stderr.split('\n').find((l) => l.includes(`,${event},`) || l.endsWith(`,${event}`))
        const n = line ? Number(line.split(',')[0]) : Number.NaN
        if (!Number.isFinite(n)) return undefined
        total += n
      }
      return total
    },
  }
}

/** Bytes the process caused to be written to storage (`write_bytes` of /proc/pid/io), if readable. */
export async function processWriteBytes(pid: number): Promise<number | undefined> {
  try {
    const io = await readFile(`/proc/${pid}/io`, 'utf8')
    const m = /^write_bytes:\s*(\d+)/m.exec(io)
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

/** Resident set size in MiB, if readable. */
export async function processRssMiB(pid: number): Promise<number | undefined> {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8')
    const m = /^VmRSS:\s*(\d+)\s*kB/m.exec(status)
    return m ? Number(m[1]) / 1024 : undefined
  } catch {
    return undefined
  }
}

/** `GET /admin/metrics` of the server (src/controllers/admin.controller.ts). */
export interface AdminMetrics {
  /** Event-loop delay since start or the last reset: maxMs is the longest block. */
  eventLoopDelayMs: { maxMs: number; p99Ms: number; meanMs: number; windowMs: number }
  connections: number
  documentsLoaded: number
  /** Counters since start. */
  refusals: { rateLimited: number; invalid: number; disconnected: number; authFailures: number; connectionsRefused: number }
}

export interface ServerHandle {
  url: string
  pid: number
  dataDir: string
  /** Wall time from spawn to the first healthy GET /health, ms. */
  startMs: number
  /** Lines the server printed (LOG_LEVEL=warn: warnings and errors only). */
  output: string[]
  /** The node flags it ran with: the caller's (`StartOptions.nodeArgs`), then BENCH_SERVER_NODE_ARGS's. */
  nodeArgs: readonly string[]
  cpu(): Promise<CpuTimes>
  writeBytes(): Promise<number | undefined>
  rssMiB(): Promise<number | undefined>
  /** `GET /admin/metrics`; `reset`: start a new event-loop window after reading. */
  metrics(reset?: boolean): Promise<AdminMetrics>
  /** SIGTERM (graceful: pending writes finish), SIGKILL after 10 s. Keeps the data dir. */
  stop(): Promise<void>
}

export interface StartOptions {
  /** Listen on this port instead of a free one (a restart on the same address). */
  port?: number
  /** Pin the server (all its threads) to these CPUs right after the spawn (`taskset -a -p -c`), if taskset can. */
  cpus?: string
  /** Called with the child's pid right after the spawn, before it is healthy (e.g. to sample its CPU from the start). */
  onSpawn?: (pid: number) => void
  /** Node flags for this server, before BENCH_SERVER_NODE_ARGS's. */
  nodeArgs?: readonly string[]
}

/** The CPUs a process may run on (`Cpus_allowed_list` of its main thread), for the record. */
export async function allowedCpus(pid: number): Promise<string | undefined> {
  try {
    return /^Cpus_allowed_list:\s*(\S+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1]
  } catch {
    return undefined
  }
}

/**
 * Pins this process (every thread, and the children it spawns from now on)
 * to `cpus` for one part of a benchmark. Returns what gives it back the CPUs
 * it had, or undefined when it could not pin (one core, no taskset).
 */
export async function pinSelf(cpus: string): Promise<(() => void) | undefined> {
  const before = await allowedCpus(process.pid)
  if (before === undefined || os.cpus().length < 2 || !pinProcess(process.pid, cpus)) return undefined
  return () => void pinProcess(process.pid, before)
}

/** `taskset -a -p -c <cpus> <pid>`: pins every thread of `pid`; false when taskset is missing or fails. */
export function pinProcess(pid: number, cpus: string): boolean {
  try {
    execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/**
 * Starts the server on a free port (or `options.port`) over `dataDir` and
 * waits until GET /health answers ok. `env`: settings to change from their
 * defaults.
 */
export async function startServer(dataDir: string, env: Record<string, string> = {}, options: StartOptions = {}): Promise<ServerHandle> {
  // As `npm start` runs it: the build, not the sources through tsx.
  buildServer()
  const port = options.port ?? (await freePort())
  const started = performance.now()
  // BENCH_SERVER_NODE_ARGS: extra node flags for the server, e.g. `--cpu-prof --cpu-prof-dir=.bench/prof`.
  const extraArgs = [...(options.nodeArgs ?? []), ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(/\s+/).filter(Boolean)]
  // Server settings the benchmark leaves at their defaults, whatever the caller's shell says (NODE_OPTIONS too).
  const child = spawnServerProcess({
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: dataDir,
      JWT_SECRET: BENCH_SECRET,
      ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
      LOG_LEVEL: 'warn',
      ...env,
    },
    nodeArgs: extraArgs,
    built: true,
    unset: ['NODE_OPTIONS'],
  })
  children.add(child)
  const output: string[] = []
  const collect = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) output.push(line)
    if (output.length > 200) output.splice(0, output.length - 200)
  }
  child.stdout.on('data', collect)
  child.stderr.on('data', collect)
  let exited = false
  const exit = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true
      children.delete(child)
      resolve()
    })
  })
  const pid = child.pid
  if (pid === undefined) throw new Error('server did not spawn')
  if (options.cpus !== undefined) pinProcess(pid, options.cpus)
  options.onSpawn?.(pid)
  const url = `http://127.0.0.1:${port}`

  const deadline = performance.now() + 30_000
  for (;;) {
    if (exited) throw new Error(`server exited before it was healthy:\n${output.join('\n')}`)
    if (performance.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`server not healthy within 30 s:\n${output.join('\n')}`)
    }
    try {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) })
      const body: unknown = await res.json()
      if (res.ok && typeof body === 'object' && body !== null && (body as { status?: unknown }).status === 'ok') break
    } catch {
      // not listening yet
    }
    await sleep(25)
  }
  const startMs = performance.now() - started

  return {
    url,
    nodeArgs: extraArgs,
    pid,
    dataDir,
    startMs,
    output,
    cpu: () => processCpu(pid),
    writeBytes: () => processWriteBytes(pid),
    rssMiB: () => processRssMiB(pid),
    async metrics(reset = false) {
      const res = await fetch(`${url}/admin/metrics${reset ? '?reset=true' : ''}`, {
        headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}` },
        signal: AbortSignal.timeout(10_000),
      })
      if (!res.ok) throw new Error(`GET /admin/metrics: HTTP ${res.status} ${await res.text()}`)
      return (await res.json()) as AdminMetrics
    },
    async stop() {
      if (exited) return
      try {
        const cpu = await processCpu(pid)
        serverCpuTotal.us += cpu.userUs + cpu.systemUs
      } catch {
        // already gone
      }
      child.kill('SIGTERM')
      const killed = await Promise.race([exit.then(() => true), sleep(10_000).then(() => false)])
      if (!killed) {
        child.kill('SIGKILL')
        await exit
      }
    },
  }
}

/**
 * Runs a benchmark's `main` as the process: exit 0 when it resolves (or the
 * `process.exitCode` a failed check set), 1 when it
 * fails, 130 on SIGINT/SIGTERM; child servers and temp dirs are cleaned up on
 * every way out.
 */
export function runBench(name: string, main: () => Promise<void>): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      cleanupSync()
      process.exit(130)
    })
  }
  process.on('exit', cleanupSync)
  main().then(
    // A failed check may have set process.exitCode (flood isolation, issue 15).
    () => process.exit(process.exitCode ?? 0),
    (err: unknown) => {
      process.stderr.write(`[${name}] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
      cleanupSync()
      process.exit(1)
    },
  )
}
