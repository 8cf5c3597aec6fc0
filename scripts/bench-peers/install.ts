/**
 * The two peers of `npm run bench:peers`, installed on demand into their own
 * folder, `.bench/peers/` (git-ignored), with `npm install --prefix`.
 *
 * They are not dependencies of this project: nothing of the server or its
 * tests uses them, they would pin a second Yjs stack (y-websocket's ws 6,
 * y-leveldb's level 6, Hocuspocus's own tree) into every `npm ci`, and only
 * this one benchmark needs them. The versions are pinned here; Yjs,
 * y-protocols and level are the versions this repository has installed, so
 * that all three servers run the same Yjs and the same LevelDB binding.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { REPO_ROOT } from '../lib/server-process.js'

export const PEERS_DIR = path.join(REPO_ROOT, '.bench', 'peers')

/** What the peers' servers and clients need, besides what they depend on themselves. */
const PINNED: Record<string, string> = {
  'y-websocket': '1.5.4',
  // y-websocket 1.5.4's optional dependency (^0.1.0), what `bin/utils` persists with.
  'y-leveldb': '0.1.2',
  '@hocuspocus/server': '2.15.3',
  '@hocuspocus/extension-database': '2.15.3',
  '@hocuspocus/provider': '2.15.3',
  // The WebSocket of both providers in Node (Hocuspocus's server uses it too).
  ws: '8.21.3',
}
/** Also installed into the peers' folder, at the version this repository uses (the fallback if it cannot be read). */
const SAME_AS_OURS: Record<string, string> = { yjs: '13.6.33', 'y-protocols': '1.0.7', level: '10.0.0' }

function installedVersion(fromDir: string, pkg: string): string | undefined {
  try {
    const json = JSON.parse(readFileSync(path.join(fromDir, 'node_modules', pkg, 'package.json'), 'utf8')) as { version?: unknown }
    return typeof json.version === 'string' ? json.version : undefined
  } catch {
    return undefined
  }
}

/** Every package the peers' folder must hold, at its version. */
export function peerPackages(): Record<string, string> {
  const ours = Object.fromEntries(Object.entries(SAME_AS_OURS).map(([pkg, v]) => [pkg, installedVersion(REPO_ROOT, pkg) ?? v]))
  return { ...PINNED, ...ours }
}

/**
 * Installs the peers into PEERS_DIR unless every pinned package is there at
 * its version already. npm's output goes to stderr. Resolves with whether it
 * had to install.
 */
export async function ensurePeers(progress: (line: string) => void): Promise<boolean> {
  const wanted = peerPackages()
  const missing = Object.entries(wanted).filter(([pkg, v]) => installedVersion(PEERS_DIR, pkg) !== v)
  if (missing.length === 0) return false
  progress(`installing the peers into ${path.relative(REPO_ROOT, PEERS_DIR)}/ (${missing.map(([p, v]) => `${p}@${v}`).join(', ')} missing) ...`)
  mkdirSync(PEERS_DIR, { recursive: true })
  const manifest = path.join(PEERS_DIR, 'package.json')
  // Its own package.json, so that npm never mistakes the repository's for the peers' project.
  if (!existsSync(manifest)) writeFileSync(manifest, `${JSON.stringify({ name: 'superclip-bench-peers', private: true }, null, 2)}\n`)
  const specs = Object.entries(wanted).map(([pkg, v]) => `${pkg}@${v}`)
  const args = ['install', '--prefix', PEERS_DIR, '--save-exact', '--no-audit', '--no-fund', '--loglevel=error', ...specs]
  const code = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('npm', args, { cwd: PEERS_DIR, stdio: ['ignore', process.stderr, process.stderr] })
    child.once('error', reject)
    child.once('exit', (c) => resolve(c))
  })
  if (code !== 0) throw new Error(`npm ${args.join(' ')} exited with ${code}`)
  const still = Object.entries(wanted).filter(([pkg, v]) => installedVersion(PEERS_DIR, pkg) !== v)
  if (still.length > 0) throw new Error(`after npm install, still missing: ${still.map(([p, v]) => `${p}@${v}`).join(', ')}`)
  return true
}

/** `require` resolving from the peers' folder, for their CommonJS builds. */
export function peerRequire(): NodeJS.Require {
  return createRequire(path.join(PEERS_DIR, 'package.json'))
}
