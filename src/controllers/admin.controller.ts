/**
 * `/admin/*` (PROTOCOL section 8): every route requires
 * `Authorization: Bearer <ADMIN_TOKEN>`; anything else is 401
 * `{ error: { code: 'UNAUTHORIZED', message } }`.
 *
 * `GET /admin/metrics`: what an operator watches while the server is under
 * load or attack: the event loop's delay since the last reset (the longest
 * block the server had, p99 and mean, in ms), connections, loaded documents,
 * and the rate-limit and abuse counters since start. `?reset=true` starts a
 * new event-loop window after reading (the flood benchmark reads one per run).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { ErrorCode } from '../utils/errors.js'
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
  const requireAdmin = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (bearerMatches(request.headers.authorization, adminToken)) return
    await reply.code(401).send({ error: { code: ErrorCode.UNAUTHORIZED, message: 'admin routes need Authorization: Bearer <ADMIN_TOKEN>' } })
  }
  app.get<{ Querystring: { reset?: string } }>(
    '/admin/metrics',
    {
      onRequest: requireAdmin,
      schema: { querystring: { type: 'object', properties: { reset: { type: 'string', enum: ['true', 'false'] } }, additionalProperties: false } },
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
