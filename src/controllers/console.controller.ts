/**
 * `GET /console`: the operators' web console (web/console/, docs/operations.md
 * "Console"), the files `npm run build` bundles into dist/console/
 * (scripts/build-console.mjs): index.html at `/console` and `/console/`, its
 * assets at `/console/<file>` (served by static-files.ts). The page is
 * public; every API call it makes carries the admin token. Hidden from the
 * OpenAPI document.
 */
import type { FastifyInstance } from 'fastify'
import { builtDir, staticFiles } from './static-files.js'

export const CONSOLE_DIR = builtDir('console')

/** Only the page's own scripts, styles and API; no framing (its buttons revoke devices and restore users). */
const CSP = "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

export function registerConsoleRoutes(app: FastifyInstance, dir: string = CONSOLE_DIR): void {
  const serve = staticFiles({ dir, name: 'console', csp: CSP })
  const schema = { hide: true }
  app.get('/console', { schema }, (_request, reply) => serve(reply, 'index.html'))
  app.get('/console/', { schema }, (_request, reply) => serve(reply, 'index.html'))
  app.get<{ Params: { file: string } }>('/console/:file', { schema }, (request, reply) => serve(reply, request.params.file))
}
