/**
 * The real server in a child process, with a clean environment: what the
 * benchmark (scripts/bench/server.ts) and the process-level tests
 * (test/helpers/child-server.ts) both start. Tests run the sources
 * (`node --import tsx src/index.ts`); benchmarks run the build, as `npm start`
 * does (`node dist/index.js`): tsx's transform wraps every function created
 * in a naming helper and keeps a loader thread, which a profile of the
 * server showed in its hot path. Each caller keeps its own tracking, output
 * capture and health check around the spawned child.
 */
import { execFileSync, spawn, type ChildProcessByStdio } from 'node:child_process'
import net from 'node:net'
import type { Readable } from 'node:stream'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url))

/**
 * Variables of protocol §8 and the server's other knobs: never inherited
 * from the caller's environment, only set as the caller says.
 */
export const SERVER_ENV_VARS: readonly string[] = [
  'HOST',
  'PORT',
  'DATA_DIR',
  'JWT_SECRET',
  'ADMIN_TOKEN',
  'LOG_LEVEL',
  'DOC_IDLE_MS',
  'COMPACT_MAX_UPDATES',
  'COMPACT_MAX_BYTES',
  'MAX_MESSAGE_BYTES',
  'COMPRESS_THRESHOLD_BYTES',
  'SYNC_WRITES',
  'RELAY_BEFORE_DURABLE',
  'IP_CONNECTIONS_PER_SECOND',
  'IP_CONNECTION_BURST',
]

/** A port that was free a moment ago (listen on 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no port from listen(0)'))))
    })
  })
}

export interface ServerProcessOptions {
  /** The server's settings (HOST, PORT, DATA_DIR, ...), set over the scrubbed environment. */
  env: Record<string, string>
  /** Node flags placed before the script, e.g. `--cpu-prof`. */
  nodeArgs?: readonly string[]
  /** Run the build (`dist/index.js`, made by `buildServer()`) instead of the sources through tsx. */
  built?: boolean
  /** More inherited variables to remove besides SERVER_ENV_VARS (e.g. NODE_OPTIONS). */
  unset?: readonly string[]
}

/**
 * Spawns the server from the repository root with stdout and stderr piped.
 * The environment is the caller's minus SERVER_ENV_VARS and `unset`, plus `env`.
 */
export function spawnServerProcess(options: ServerProcessOptions): ChildProcessByStdio<null, Readable, Readable> {
  const env: NodeJS.ProcessEnv = { ...process.env }
  for (const name of [...SERVER_ENV_VARS, ...(options.unset ?? [])]) delete env[name]
  Object.assign(env, options.env)
  const script = options.built ? ['dist/index.js'] : ['--import', 'tsx', 'src/index.ts']
  return spawn(process.execPath, [...(options.nodeArgs ?? []), ...script], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

let built = false

/** Builds the server into dist/ (`npm run build`), once per process. */
export function buildServer(): void {
  if (built) return
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] })
  built = true
}
