/**
 * The three servers of `npm run bench:peers` behind one handle: y-websocket
 * and Hocuspocus from their entry scripts beside this file (run with node,
 * packages from .bench/peers), ours through the benchmark's own `startServer`
 * (`node dist/index.js`, built first; default settings). Each runs on the
 * server core (CPU 0) when `taskset` can pin it, and each is tracked so that
 * the benchmark's cleanup kills it on abort.
 */
import { execFileSync, spawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, REPO_ROOT } from '../lib/server-process.js'
import { processCpu, processRssMiB, startServer, trackChild } from '../bench/server.js'

import { sleep } from '../bench/stats.js'
import { PEERS_DIR } from './install.js'

const HERE = path.dirname(fileURLToPath(import.meta.url))

/** Where the servers run and where the load runs, if pinning works (see pinning()). */
export const SERVER_CPU = '0'
export const LOAD_CPU = '1'

let pinningState: { ok: boolean; note: string } | undefined

/**
 * Pins this process (all its threads; children inherit it) to LOAD_CPU, once.
 * Servers are then started on SERVER_CPU. Without `taskset` or a second core
 * everything runs unpinned, and `note` says so.
 */
export function pinning(): { ok: boolean; note: string } {
  if (pinningState) return pinningState
  try {
    execFileSync('taskset', ['-a', '-p', '-c', LOAD_CPU, String(process.pid)], { stdio: 'ignore' })
    pinningState = { ok: true, note: `servers pinned to CPU ${SERVER_CPU}, load (this process) to CPU ${LOAD_CPU} with taskset` }
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'taskset not found' : `taskset failed: ${(err as Error).message.split('\n')[0]}`
    pinningState = { ok: false, note: `UNPINNED (${why}): servers and load share all cores` }
  }
  return pinningState
}

/** 'floor': not a sync server, the Socket.IO floor of our protocol (socketio-floor-server.mjs). */
export type TargetName = 'y-websocket' | 'Hocuspocus' | 'ours' | 'floor'

export interface TargetServer {
  name: TargetName
  /** ws://… for the peers, http://… for ours and the floor. */
  url: string
  /** Several nodes (ours as a cluster): every node's URL; a user's devices go to `nodeUrl` of them. */
  urls?: readonly string[]
  /** Called around each measured fan-out round (after the devices connected, until the last arrival): extra readings. */
  probe?: { start(): Promise<void>; end(): Promise<void> }
  pid: number
  /** Spawn to accepting connections, ms. */
  startMs: number
  /** utime + stime of the server process, µs. */
  cpuUs(): Promise<number>
  rssMiB(): Promise<number | undefined>
  /** Graceful stop (SIGTERM; SIGKILL after 10 s). */
  stop(): Promise<void>
  /** SIGKILL, sent before anything else happens; resolves once the process is gone. */
  kill(): Promise<void>
}

async function cpuOf(pid: number): Promise<number> {
  const c = await processCpu(pid)
  return c.userUs + c.systemUs
}

/**
 * What ours runs with besides its defaults: every simulated device connects
 * from 127.0.0.1, so the per-address handshake limit (50/s, burst 500), made
 * against one abusive address, is lifted; the peers have none.
 */
/** The node of `server` that a user's devices connect to: with several, one per user by a hash of the id. */
export function nodeUrl(server: Pick<TargetServer, 'url' | 'urls'>, userId: string): string {
  const urls = server.urls ?? []
  if (urls.length === 0) return server.url
  let h = 0
  for (let i = 0; i < userId.length; i++) h = (h * 31 + userId.charCodeAt(i)) >>> 0
  return urls[h % urls.length] ?? server.url
}

export const OURS_ENV = {
  IP_CONNECTIONS_PER_SECOND: '1000000',
  IP_CONNECTION_BURST: '10000000',
  // BENCH_PEERS_RELAY=durable: relays after the commit, as before issue 13's early relays (for A/B runs).
  ...(process.env.BENCH_PEERS_RELAY === 'durable' ? { RELAY_BEFORE_DURABLE: 'false' } : {}),
}

/** Ours: the benchmark's startServer over `dataDir`, then every thread moved to SERVER_CPU. */
export async function startOurs(dataDir: string): Promise<TargetServer> {
  const handle = await startServer(dataDir, OURS_ENV)
  if (pinning().ok) {
    // All threads (-a); threads started later inherit the affinity of the thread that starts them.
    execFileSync('taskset', ['-a', '-p', '-c', SERVER_CPU, String(handle.pid)], { stdio: 'ignore' })
  }
  return {
    name: 'ours',
    url: handle.url,
    pid: handle.pid,
    startMs: handle.startMs,
    cpuUs: () => cpuOf(handle.pid),
    rssMiB: () => handle.rssMiB(),
    stop: () => handle.stop(),
    async kill() {
      try {
        process.kill(handle.pid, 'SIGKILL')
      } catch {
        // already gone
      }
      await handle.stop() // only waits for the exit now
    },
  }
}

/** A peer: `node scripts/bench-peers/<script>` under `taskset -c SERVER_CPU`, ready once it prints `listening <port>`. */
async function startPeer(name: TargetName, script: string, env: Record<string, string>, scheme: 'ws' | 'http' = 'ws'): Promise<TargetServer> {
  const port = await freePort()
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, BENCH_PEERS_DIR: PEERS_DIR, HOST: '127.0.0.1', PORT: String(port) }
  delete childEnv.NODE_OPTIONS
  const nodeArgv = [process.execPath, path.join(HERE, script)]
  const argv = pinning().ok ? ['taskset', '-c', SERVER_CPU, ...nodeArgv] : nodeArgv
  const started = performance.now()
  const child = spawn(argv[0] ?? process.execPath, argv.slice(1), { cwd: REPO_ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] })
  trackChild(child)
  const pid = child.pid
  if (pid === undefined) throw new Error(`${name}: did not spawn`)
  const output: string[] = []
  let exited = false
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true
      resolve()
    }),
  )
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: not listening within 30 s:\n${output.join('\n')}`)), 30_000)
    const onData = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line.trim()) continue
        output.push(line)
        if (output.length > 100) output.shift()
        if (line.startsWith(`listening ${port}`)) {
          clearTimeout(timer)
          resolve()
        }
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    void exit.then(() => {
      clearTimeout(timer)
      reject(new Error(`${name}: exited before listening (code ${child.exitCode}):\n${output.join('\n')}`))
    })
  })
  try {
    await ready
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  const startMs = performance.now() - started
  return {
    name,
    url: `${scheme}://127.0.0.1:${port}`,
    pid,
    startMs,
    cpuUs: () => cpuOf(pid),
    rssMiB: () => processRssMiB(pid),
    async stop() {
      if (exited) return
      child.kill('SIGTERM')
      if (!(await Promise.race([exit.then(() => true), sleep(10_000).then(() => false)]))) {
        child.kill('SIGKILL')
        await exit
      }
    },
    async kill() {
      if (!exited) child.kill('SIGKILL')
      await exit
    },
  }
}

/** y-websocket 1.5.4 (`bin/utils` setupWSConnection) persisting with y-leveldb into `dataDir`. */
export function startYWebsocket(dataDir: string): Promise<TargetServer> {
  return startPeer('y-websocket', 'ywebsocket-server.mjs', { YPERSISTENCE: dataDir })
}

/** Hocuspocus 2.15.3 with its database extension storing into a `level` database in `dataDir`. */
export function startHocuspocus(dataDir: string): Promise<TargetServer> {
  return startPeer('Hocuspocus', 'hocuspocus-server.mjs', { DB_DIR: dataDir })
}

/** The Socket.IO floor: a bare Socket.IO server acking and relaying our protocol's messages (no Yjs, no disk); `dataDir` is unused. */
export function startFloor(_dataDir: string): Promise<TargetServer> {
  return startPeer('floor', 'socketio-floor-server.mjs', {}, 'http')
}
