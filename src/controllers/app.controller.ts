/**
 * `GET /app/`: the web client (web/app/), the files `npm run build` bundles
 * into dist/app/ (scripts/build-app.mjs): index.html at `/app/`, its assets
 * and its service worker (`/app/sw.js`, scope `/app/`) at `/app/<file>`
 * (served by static-files.ts). Hidden from the OpenAPI document.
 *
 * `/app` redirects to `/app/`: the service worker's scope is `/app/`, which
 * `/app` is not inside, and a page outside it would not load offline.
 */
import type { FastifyInstance } from 'fastify'
import { builtDir, staticFiles } from './static-files.js'

export const APP_DIR = builtDir('app')

/**
 * The page's own scripts, styles and service worker, and its own server for
 * the Socket.IO websocket (`connect-src 'self'` covers ws: and wss: to the
 * same host); no framing.
 */
const CSP =
  "default-src 'self'; connect-src 'self'; worker-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

export function registerAppRoutes(app: FastifyInstance, dir: string = APP_DIR): void {
  const serve = staticFiles({ dir, name: 'app', csp: CSP })
  const schema = { hide: true }
  app.get('/app', { schema }, (_request, reply) => reply.redirect('/app/'))
  app.get('/app/', { schema }, (_request, reply) => serve(reply, 'index.html'))
  app.get<{ Params: { file: string } }>('/app/:file', { schema }, (request, reply) => serve(reply, request.params.file))
}
