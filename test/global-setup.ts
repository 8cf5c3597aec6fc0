/**
 * Before any test file: builds the client SDK (client/ → client/dist/), which
 * tests import as `@superclip/sync-client` exactly as an app would, and which
 * child processes load. Incremental, so a second run is quick.
 */
import { execFileSync } from 'node:child_process'
import path from 'node:path'

export default function setup(): void {
  const root = path.resolve(import.meta.dirname, '..')
  execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'client/tsconfig.json')], { stdio: 'inherit' })
}
