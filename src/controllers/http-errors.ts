/**
 * Errors of every HTTP route, in one shape (protocol §§9 and 10):
 * `{ error: { code, message, retryAfterMs? } }` with the code's HTTP status
 * (utils/errors.ts `HTTP_STATUS`), and a `Retry-After` header (seconds) beside
 * `retryAfterMs`. A request that fails its schema, or whose body cannot be
 * read, is `INVALID_PAYLOAD`; a body over the limit is `PAYLOAD_TOO_LARGE`;
 * an unknown route is `NOT_FOUND`; anything unexpected is `INTERNAL` (logged).
 */
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify'
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod'
import { ErrorCode, HTTP_STATUS, SyncError, toProtocolError, type ProtocolError } from '../utils/errors.js'

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

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const known = err instanceof SyncError ? toProtocolError(err) : requestError(err)
    if (known) return send(reply, known)
    request.log.error({ err }, 'request failed')
    return send(reply, toProtocolError(err))
  })
  app.setNotFoundHandler((request, reply) => send(reply, { code: ErrorCode.NOT_FOUND, message: `no route ${request.method} ${request.url.split('?')[0]}` }))
}
