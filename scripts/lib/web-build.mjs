/**
 * What the two browser builds (scripts/build-console.mjs, scripts/build-app.mjs)
 * share: esbuild's options for this repository's browser code, and how a
 * built file is written.
 */
import { rename, writeFile } from 'node:fs/promises'
import path from 'node:path'
import process from 'node:process'

export const root = path.resolve(import.meta.dirname, '..', '..')

/** esbuild options for a browser bundle into `outdir`, kept in memory (`write: false`) for writeAtomically. */
export function browserBuild(outdir) {
  return {
    absWorkingDir: root,
    outdir,
    bundle: true,
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    sourcemap: 'linked',
    // The browser code has its own tsconfig (DOM lib, bundler resolution).
    tsconfig: path.join(root, 'web', 'tsconfig.json'),
    logLevel: 'warning',
    write: false,
  }
}

/**
 * Writes the file beside its place and renames it over it: a server serving
 * the page while another build runs (the tests build in parallel) never
 * reads half a file.
 */
export async function writeAtomically(file, contents) {
  const temp = `${file}.${process.pid}.tmp`
  await writeFile(temp, contents)
  await rename(temp, file)
}
