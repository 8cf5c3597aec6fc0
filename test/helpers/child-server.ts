/**
 * The real server (`src/index.ts`, as `npm start` runs it) in a child process,
 * for tests that need what an in-process server cannot give: SIGKILL, SIGTERM,
 * the process exit code, and two processes on one DATA_DIR.
 *
 * Every child spawned here is tracked; `killAllChildren()` (call it from
 * afterEach/afterAll) SIGKILLs and reaps whatever is still running, and a
 * process 'exit' hook SIGKILLs stragglers if the test worker itself goes away.
 */
import type { ChildProcess } from 'node:child_process'
import { freePort, spawnServerProcess } from '../../scripts/lib/server-process.js'
import { TEST_SECRET } from './server.js'

export { freePort }

/** Bounded waits: generous because the machines are shared (2 cores) and tsx compiles on start. */
export const START_TIMEOUT_MS = 30_000
export const EXIT_TIMEOUT_MS = 20_000

export interface ChildExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export interface ChildServerOptions {
  dataDir: string
  /** A free port is picked when omitted. */
  port?: number
  /** Extra environment (e.g. COMPACT_MAX_UPDATES); overrides the defaults below. */
  env?: Record<string, string>
}

export interface ChildServer {
  readonly pid: number
  readonly port: number
  readonly url: string
  readonly dataDir: string
  /** Settles when the process has exited and its output is fully read. */
  readonly exited: Promise<ChildExit>
  /** Whether the process has exited (its `exited` promise settled). */
  readonly hasExited: boolean
  stdout(): string
  stderr(): string
  /** Sends `signal` (SIGTERM by default); a no-op once the process has exited. */
  kill(signal?: NodeJS.Signals): void
  /** Waits, bounded, for the exit; throws with the captured stderr on timeout. */
  waitForExit(ms?: number): Promise<ChildExit>
}

const children = new Set<ChildProcess>()

// Last resort if the worker exits without running afterAll: no orphaned servers.
process.once('exit', () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
})

/** Rejects with `what` if `promise` does not settle within `ms`. */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms)
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** Spawns the server without waiting for it to serve (see `startChildServer`). */
export async function spawnChildServer(options: ChildServerOptions): Promise<ChildServer> {
  const port = options.port ?? (await freePort())
  // The server's variables are never inherited from the test runner (scripts/lib/server-process.ts).
  const child = spawnServerProcess({
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: options.dataDir,
      JWT_SECRET: TEST_SECRET,
      LOG_LEVEL: 'info',
      ...options.env,
    },
  })
  children.add(child)
  let out = ''
  let err = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk))
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk))
  let hasExited = false
  const exited = new Promise<ChildExit>((resolve) => {
    // 'close' (not 'exit'): the output is complete by then.
    child.once('close', (code, signal) => {
      hasExited = true
      children.delete(child)
      resolve({ code, signal })
    })
    child.once('error', (e) => {
      err += `\n[spawn error] ${String(e)}`
      hasExited = true
      children.delete(child)
      resolve({ code: null, signal: null })
    })
  })
  if (child.pid === undefined) {
    await exited
    throw new Error(`could not spawn the server: ${err}`)
  }
  const pid = child.pid
  const url = `http://127.0.0.1:${port}`
  const handle: ChildServer = {
    pid,
    port,
    url,
    dataDir: options.dataDir,
    exited,
    get hasExited() {
      return hasExited
    },
    stdout: () => out,
    stderr: () => err,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (!hasExited && child.exitCode === null && child.signalCode === null) child.kill(signal)
    },
    async waitForExit(ms = EXIT_TIMEOUT_MS) {
      try {
        return await within(exited, ms, `server pid ${pid} to exit`)
      } catch (e) {
        throw new Error(`${(e as Error).message}\n--- stderr ---\n${err}\n--- stdout (tail) ---\n${out.slice(-4000)}`, {
          cause: e,
        })
      }
    },
  }
  return handle
}

/**
 * Waits until this child has logged that it listens on its port and `GET /health`
 * answers 200; throws if the process exits first or `ms` pass. (LOG_LEVEL must
 * be info or lower for the listen line.)
 */
export async function waitHealthy(server: ChildServer, ms = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    if (server.hasExited) {
      const { code, signal } = await server.exited
      throw new Error(
        `server pid ${server.pid} exited (code ${code}, signal ${signal}) before serving /health\n` +
          `--- stderr ---\n${server.stderr()}\n--- stdout (tail) ---\n${server.stdout().slice(-4000)}`,
      )
    }
    // Only a server that logged its own listen on this port counts: two test files in parallel can
    // be handed the same free port, and /health alone would then be answered by the other's server.
    if (server.stdout().includes(`listening on ${server.url};`)) {
      try {
        const res = await fetch(`${server.url}/health`, { signal: AbortSignal.timeout(2_000) })
        await res.arrayBuffer()
        if (res.status === 200) return
      } catch {
        // Not answering yet.
      }
    }
    if (Date.now() > deadline) {
      throw new Error(
        `server pid ${server.pid} did not answer /health within ${ms} ms\n` +
          `--- stderr ---\n${server.stderr()}\n--- stdout (tail) ---\n${server.stdout().slice(-4000)}`,
      )
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}

/**
 * Spawns the server and waits until `/health` answers 200. A port taken between
 * `freePort()` and the child's listen (EADDRINUSE) is retried with a new port.
 */
export async function startChildServer(options: ChildServerOptions): Promise<ChildServer> {
  for (let attempt = 1; ; attempt++) {
    const server = await spawnChildServer(options)
    try {
      await waitHealthy(server)
      return server
    } catch (e) {
      server.kill('SIGKILL')
      await server.waitForExit()
      const portRace = options.port === undefined && /EADDRINUSE/.test(server.stderr() + server.stdout())
      if (!portRace || attempt >= 3) throw e
    }
  }
}

/** GET `/health`: status and parsed body. */
export async function getHealth(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) })
  const text = await res.text()
  let body: unknown = text
  try {
    body = JSON.parse(text)
  } catch {
    // Not JSON: keep the text.
  }
  return { status: res.status, body }
}

/** SIGKILLs every child still running and waits (bounded) until each is reaped. */
export async function killAllChildren(): Promise<void> {
  const running = [...children]
  for (const child of running) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
  await within(
    Promise.all(
      running.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (!children.has(child)) resolve()
            else child.once('close', () => resolve())
          }),
      ),
    ),
    EXIT_TIMEOUT_MS,
    'child servers to exit',
  )
}

/** How many spawned children are still running (for the no-orphans check). */
export function runningChildren(): number {
  return children.size
}

/** The server's log lines (pino JSON on stdout) at level error (50) or fatal (60). */
export function errorLogs(server: ChildServer): string[] {
  return server
    .stdout()
    .split('\n')
    .filter((line) => /^\{.*"level":(50|60)[,}]/.test(line))
}
