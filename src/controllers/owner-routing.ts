/**
 * Cluster mode (protocol §11): an HTTP request for a user another live node
 * owns (the route's document load failed with LeaseHeldError).
 *
 * - HTTP sync (`/v1/sync/*`): `307` to the owner's PUBLIC_URL, same path and
 *   query, body `{ error: { code: 'MOVED', message, url } }`. A client resends
 *   there with its token (fetch drops `Authorization` on a redirect to
 *   another origin, so clients follow it themselves).
 * - Admin routes (`/admin/*`): sent on to the owner through the cluster
 *   (ClusterLink.forward: a server-side event of the Socket.IO Redis
 *   adapter), which answers it as if it had come to it; its reply is replayed
 *   here. With no answer (the owner just died), the UNAVAILABLE refusal stands.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { LeaseHeldError } from '../repositories/postgres-leases.js'
import { MOVED_CODE } from '../websockets/middleware/ownership.middleware.js'
import type { ForwardedReply, ForwardedRequest } from '../websockets/types.js'

/** Marks a request forwarded to its owner: the owner answers it, never forwards it again. */
export const FORWARDED_HEADER = 'x-superclip-forwarded'

export type OwnerRouting = (err: LeaseHeldError, request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>

export function ownerRouting(forward: (request: ForwardedRequest) => Promise<ForwardedReply | undefined>): OwnerRouting {
  return async (err, request, reply) => {
    if (request.url.startsWith('/v1/sync/')) {
      const message = `this user is served by another node: resend to ${err.url}`
      return reply
        .code(307)
        .header('location', `${err.url}${request.url}`)
        .send({ error: { code: MOVED_CODE, message, url: err.url } })
    }
    if (!request.url.startsWith('/admin/') || request.headers[FORWARDED_HEADER] !== undefined) return undefined
    const body = request.body === undefined || request.body === null ? undefined : Buffer.isBuffer(request.body) ? request.body : Buffer.from(JSON.stringify(request.body))
    const answered = await forward({
      toNodeId: err.nodeId,
      method: request.method,
      url: request.url,
      authorization: request.headers.authorization,
      contentType: request.headers['content-type'],
      body: body?.toString('base64'),
    }).catch((cause: unknown) => {
      // Redis down: the refusal stands.
      request.log.warn({ err: cause, owner: err.nodeId }, 'forwarding an admin request to its owner failed')
      return undefined
    })
    if (!answered) return undefined
    if (answered.contentType) void reply.header('content-type', answered.contentType)
    return reply.code(answered.statusCode).send(Buffer.from(answered.body, 'base64'))
  }
}

/** The owner's side: `inject` answers the forwarded request through this node's own routes. */
export async function answerForwarded(
  inject: (options: { method: string; url: string; headers: Record<string, string>; payload?: Buffer }) => Promise<{
    statusCode: number
    headers: Record<string, unknown>
    rawPayload: Buffer
  }>,
  request: ForwardedRequest,
): Promise<ForwardedReply> {
  const headers: Record<string, string> = { [FORWARDED_HEADER]: '1' }
  if (request.authorization !== undefined) headers.authorization = request.authorization
  if (request.contentType !== undefined) headers['content-type'] = request.contentType
  const res = await inject({
    method: request.method,
    url: request.url,
    headers,
    ...(request.body === undefined ? {} : { payload: Buffer.from(request.body, 'base64') }),
  })
  const contentType = res.headers['content-type']
  return { statusCode: res.statusCode, contentType: typeof contentType === 'string' ? contentType : undefined, body: res.rawPayload.toString('base64') }
}
