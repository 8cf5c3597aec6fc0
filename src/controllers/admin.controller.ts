/**
 * `/admin/*` (protocol §8): every route requires
 * `Authorization: Bearer <ADMIN_TOKEN>`; anything else is 401
 * `{ error: { code: 'UNAUTHORIZED', message } }`.
 *
 * `GET /metrics`: every metric (utils/metrics.ts) in Prometheus text format.
 *
 * `GET /admin/metrics`: what an operator watches while the server is under
 * load or attack: the event loop's delay since the last reset (the longest
 * block the server had, p99 and mean, in ms), connections, loaded documents,
 * and the rate-limit and abuse counters since start. `?reset=true` starts a
 * new event-loop window after reading (the flood benchmark reads one per run).
 * A JSON view of the same registry as `/metrics`: one source of numbers.
 *
 * `GET /admin/openapi.json`: the OpenAPI 3 document of every route, generated
 * by @fastify/swagger from the routes' schemas.
 */
import type { FastifyInstance } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import type { Counter, Gauge } from 'prom-client'
import { ErrorCode } from '../utils/errors.js'
import { ADMIN_SECURITY, adminGuard } from './admin-auth.js'
import type { EventLoopMonitor } from '../utils/event-loop-monitor.js'
import type { Metrics } from '../utils/metrics.js'

export interface AdminMetricsSources {
  metrics: Metrics
  /** Only for `?reset=true`: its numbers are read through `metrics`. */
  eventLoop: EventLoopMonitor
}

/** Codes of refused events that `refusals.invalid` counts (`rateLimited` counts RATE_LIMITED). */
const INVALID_CODES: ReadonlySet<string> = new Set([ErrorCode.INVALID_PAYLOAD, ErrorCode.INVALID_UPDATE, ErrorCode.PAYLOAD_TOO_LARGE])

/** The sum of `metric`'s series whose `code` label passes `code` (every series without it). */
async function total(metric: Counter<string> | Gauge, code: (code: unknown) => boolean = () => true): Promise<number> {
  let sum = 0
  for (const { labels, value } of (await metric.get()).values) if (code(labels.code)) sum += value
  return sum
}

/** `/admin/metrics`, read from the registry. */
async function adminView(m: Metrics) {
  const ms = async (gauge: Gauge): Promise<number> => Math.round((await total(gauge)) * 1e4) / 10 // seconds to ms, 0.1 ms
  return {
    eventLoopDelayMs: {
      maxMs: await ms(m.eventLoopDelayMax),
      p99Ms: await ms(m.eventLoopDelayP99),
      meanMs: await ms(m.eventLoopDelayMean),
      windowMs: Math.round((await total(m.eventLoopWindow)) * 1000),
    },
    connections: await total(m.connections),
    documentsLoaded: await total(m.documentsLoaded),
    refusals: {
      rateLimited: await total(m.eventRefusals, (code) => code === ErrorCode.RATE_LIMITED),
      invalid: await total(m.eventRefusals, (code) => INVALID_CODES.has(String(code))),
      disconnected: await total(m.abuseDisconnects),
      authFailures: await total(m.handshakeRefusals, (code) => code === ErrorCode.UNAUTHORIZED),
      connectionsRefused: await total(m.handshakeRefusals, (code) => code === ErrorCode.RATE_LIMITED),
    },
  }
}

export function registerAdminRoutes(app: FastifyInstance, adminToken: string, sources: AdminMetricsSources): void {
  const requireAdmin = adminGuard(adminToken)
  const routes = app.withTypeProvider<ZodTypeProvider>()
  const security = ADMIN_SECURITY
  routes.get(
    '/admin/openapi.json',
    { onRequest: requireAdmin, schema: { tags: ['admin'], summary: 'This document', security } },
    () => app.swagger(),
  )
  routes.get(
    '/metrics',
    { onRequest: requireAdmin, schema: { tags: ['admin'], summary: 'Every metric, in Prometheus text format', security } },
    async (_request, reply) => {
      const { registry } = sources.metrics
      return reply.type(registry.contentType).send(await registry.metrics())
    },
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
    async (request, reply) => {
      const view = await adminView(sources.metrics)
      if (request.query.reset === 'true') sources.eventLoop.reset()
      return reply.send(view)
    },
  )
}
