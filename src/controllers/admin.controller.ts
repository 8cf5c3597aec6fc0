/**
 * `/admin/*` (protocol §8): every route requires
 * `Authorization: Bearer <ADMIN_TOKEN>`; anything else is 401
 * `{ error: { code: 'UNAUTHORIZED', message } }`.
 *
 * `GET /admin/metrics`: what an operator watches while the server is under
 * load or attack: the event loop's delay since the last reset (the longest
 * block the server had, p99 and mean, in ms), connections, loaded documents,
 * and the rate-limit and abuse counters since start. `?reset=true` starts a
 * new event-loop window after reading (the flood benchmark reads one per run).
 *
 * `GET /admin/openapi.json`: the OpenAPI 3 document of every route, generated
 * by @fastify/swagger from the routes' schemas.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { ErrorCode, SyncError } from '../utils/errors.js'
import type { EventLoopMonitor } from '../utils/event-loop-monitor.js'

export interface AdminMetricsSources {
  eventLoop: EventLoopMonitor
  connections: () => number
  documentsLoaded: () => number
  refusals: () => Record<string, number>
}

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** Compares digests, so the check takes the same time whatever the guess. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer (.+)$/.exec(header ?? '')
  return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), digest(token))
}

export function registerAdminRoutes(app: FastifyInstance, adminToken: string, sources: AdminMetricsSources): void {
  const requireAdmin = (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    if (bearerMatches(request.headers.authorization, adminToken)) done()
    else done(new SyncError(ErrorCode.UNAUTHORIZED, 'admin routes need Authorization: Bearer <ADMIN_TOKEN>'))
  }
  const routes = app.withTypeProvider<ZodTypeProvider>()
  const security = [{ adminToken: [] }]
  routes.get(
    '/admin/openapi.json',
    { onRequest: requireAdmin, schema: { tags: ['admin'], summary: 'This document', security } },
    () => app.swagger(),
  )
  routes.get(
    '/admin/metrics',
    {
      onRequest: requireAdmin,
      schema: {
        tags: ['admin'],
        summary: 'Event-loop delay, connections, loaded documents and refusal counters',
        security,
        querystring: z.strictObject({ reset: z.enum(['true', 'false']).optional().describe('Start a new event-loop window after reading') }),
      },
    },
    (request, reply) => {
      const eventLoopDelayMs = sources.eventLoop.read()
      if (request.query.reset === 'true') sources.eventLoop.reset()
      return reply.send({
        eventLoopDelayMs,
        connections: sources.connections(),
        documentsLoaded: sources.documentsLoaded(),
        refusals: sources.refusals(),
      })
    },
  )
}
