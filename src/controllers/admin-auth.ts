/** The admin token check of `/admin/*` and `/metrics` (protocol §§8, 9): `Authorization: Bearer <ADMIN_TOKEN>`. */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { ErrorCode, SyncError } from '../utils/errors.js'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/** Compares digests, so the check takes the same time whatever the guess. */
function bearerMatches(header: string | undefined, token: string): boolean {
  const match = /^Bearer (.+)$/.exec(header ?? '')
  return match?.[1] !== undefined && timingSafeEqual(digest(match[1]), digest(token))
}

/** An `onRequest` hook refusing, with 401 UNAUTHORIZED, a request without the admin token. */
export function adminGuard(adminToken: string) {
  return (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    if (bearerMatches(request.headers.authorization, adminToken)) done()
    else done(new SyncError(ErrorCode.UNAUTHORIZED, 'admin routes need Authorization: Bearer <ADMIN_TOKEN>'))
  }
}

/** The OpenAPI security requirement of admin routes. */
export const ADMIN_SECURITY = [{ adminToken: [] }]
