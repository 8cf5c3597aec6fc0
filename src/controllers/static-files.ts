/**
 * Serving a built web page's files (the operators' console at /console, the
 * web client at /app): one flat directory that `npm run build` fills with
 * esbuild (scripts/build-console.mjs, scripts/build-app.mjs).
 *
 * A file is named by the last path segment only: no directories, a name of
 * plain characters, a known type; anything else is a 404, so nothing outside
 * the directory (nor its .tmp files mid-build) is ever read. The files are
 * read at each request (a handful, small, and a rebuild needs no restart),
 * sent `no-cache` (revalidated, so a rebuild is picked up), `nosniff`, and
 * with the page's Content-Security-Policy.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyReply } from 'fastify'
import { ErrorCode, SyncError } from '../utils/errors.js'

/**
 * `<package root>/dist/<name>/`, found from this file's own place, which is
 * `src/controllers/` or `dist/controllers/`: the same directory whether the
 * server runs built or from its sources.
 */
export const builtDir = (name: string): string => fileURLToPath(new URL(`../../dist/${name}/`, import.meta.url))

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
}

/** A file name of a built page: no directories, a known type. */
const FILE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

export interface StaticFiles {
  /** The built directory. */
  dir: string
  /** What the files are, for the 404 messages: `console`, `app`. */
  name: string
  /** The Content-Security-Policy of every file (a worker script's applies to the worker). */
  csp: string
}

export type ServeFile = (reply: FastifyReply, file: string) => Promise<FastifyReply>

/** Sends `file` of the directory, or throws NOT_FOUND (for index.html: the page is not built). */
export function staticFiles({ dir, name, csp }: StaticFiles): ServeFile {
  return async (reply, file) => {
    const type = TYPES[path.extname(file)]
    if (!FILE.test(file) || type === undefined) throw new SyncError(ErrorCode.NOT_FOUND, `no ${name} file ${file}`)
    let body: Buffer
    try {
      body = await readFile(path.join(dir, file))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      const built = file === 'index.html' ? `the ${name} is not built: run npm run build` : `no ${name} file ${file}`
      throw new SyncError(ErrorCode.NOT_FOUND, built)
    }
    return reply
      .type(type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', csp)
      .send(body)
  }
}
