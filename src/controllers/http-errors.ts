/**
 * Errors of every HTTP route, in one shape (protocol §§9 and 10):
 * `{ error: { code, message, retryAfterMs? } }` with the code's HTTP status
 * (utils/errors.ts `HTTP_STATUS`), and a `Retry-After` header (seconds) beside
 * `retryAfterMs`. A request that fails its schema, or whose body cannot be
 * read, is `INVALID_PAYLOAD`; a body over the limit is `PAYLOAD_TOO_LARGE`;
 * an unknown route is `NOT_FOUND`; anything unexpected is `INTERNAL` (logged).
 * Each error of a route is counted by route and code (`superclip_http_refusals_total`).
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod'
import { ErrorCode, HTTP_STATUS, SyncError, toProtocolError, type ProtocolError } from '../utils/errors.js'
import type { Metrics } from '../utils/metrics.js'
import { LeaseHeldError } from '../repositories/postgres-leases.js'
import type { OwnerRouting } from './owner-routing.js'

function send(reply: FastifyReply, error: ProtocolError): FastifyReply {
  if (error.retryAfterMs !== undefined) void reply.header('retry-after', Math.ceil(error.retryAfterMs / 1000))
  return reply.code(HTTP_STATUS[error.code]).send({ error })
}

/** A request error Fastify raised (schema, body parsing, body size) as a protocol error, or undefined for any other. */
function requestError(err: FastifyError): ProtocolError | undefined {
  if (hasZodFastifySchemaValidationErrors(err)) {
    const issue = err.validation[0]
    const where = [err.validationContext, issue?.instancePath.replaceAll('/', '.').replace(/^\./, '')].filter(Boolean).join('.')
    return { code: ErrorCode.INVALID_PAYLOAD, message: `${where}: ${issue?.message ?? 'invalid'}` }
  }
  if (err.statusCode === 413) return { code: ErrorCode.PAYLOAD_TOO_LARGE, message: err.message }
  if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) return { code: ErrorCode.INVALID_PAYLOAD, message: err.message }
  return undefined
}

/** The `route` label of a request's refusals: its method and route pattern. */
export const routeOf = (request: FastifyRequest): string => `${request.method} ${request.routeOptions.url ?? '?'}`

/**
 * `routing()`: in cluster mode, what a request for a user another node owns
 * gets instead of its UNAVAILABLE refusal (owner-routing.ts).
 */
export function registerErrorHandling(app: FastifyInstance, metrics: Metrics, routing: () => OwnerRouting | undefined = () => undefined): void {
  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    const route = routing()
    if (route && err instanceof LeaseHeldError) {
      const routed = await route(err, request, reply)
      if (routed) return routed
    }
    const known = err instanceof SyncError ? toProtocolError(err) : requestError(err)
    if (!known) request.log.error({ err }, 'request failed')
    const error = known ?? toProtocolError(err)
    metrics.httpRefusals.inc({ route: routeOf(request), code: error.code })
    return send(reply, error)
  })
  app.setNotFoundHandler((request, reply) => send(reply, { code: ErrorCode.NOT_FOUND, message: `no route ${request.method} ${request.url.split('?')[0]}` }))
}
