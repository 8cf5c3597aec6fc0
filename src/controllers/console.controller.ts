/**
 * `GET /console`: the operators' web console (web/console/, docs/operations.md
 * "Console"), the files `npm run build` bundles into dist/console/
 * (scripts/build-console.mjs): index.html at `/console` and `/console/`, its
 * assets at `/console/<file>`. The page is public; every API call it makes
 * carries the admin token. Hidden from the OpenAPI document.
 *
 * The files are read at each request (a handful, small, and a rebuild needs
 * no restart). Their directory is `<package root>/dist/console`, found from
 * this file's own place, which is `src/controllers/` or `dist/controllers/`:
 * the same directory whether the server runs built or from its sources.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance, FastifyReply } from 'fastify'
import { ErrorCode, SyncError } from '../utils/errors.js'

export const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console/', import.meta.url))

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
}

/** Only the page's own scripts, styles and API; no framing (its buttons revoke devices and restore users). */
const CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

/** A file name of the built console: no directories, a known type. */
const FILE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/

export function registerConsoleRoutes(app: FastifyInstance, dir: string = CONSOLE_DIR): void {
  const serve = async (reply: FastifyReply, file: string): Promise<FastifyReply> => {
    const type = TYPES[path.extname(file)]
    if (!FILE.test(file) || type === undefined) throw new SyncError(ErrorCode.NOT_FOUND, `no console file ${file}`)
    let body: Buffer
    try {
      body = await readFile(path.join(dir, file))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      const built = file === 'index.html' ? 'the console is not built: run npm run build' : `no console file ${file}`
      throw new SyncError(ErrorCode.NOT_FOUND, built)
    }
    return reply
      .type(type)
      .header('cache-control', 'no-cache')
      .header('x-content-type-options', 'nosniff')
      .header('content-security-policy', CSP)
      .send(body)
  }
  const schema = { hide: true }
  app.get('/console', { schema }, (_request, reply) => serve(reply, 'index.html'))
  app.get('/console/', { schema }, (_request, reply) => serve(reply, 'index.html'))
  app.get<{ Params: { file: string } }>('/console/:file', { schema }, (request, reply) => serve(reply, request.params.file))
}
