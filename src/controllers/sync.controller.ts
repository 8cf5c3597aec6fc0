/**
 * HTTP sync (protocol §10; the seed's `controllers/sync.controller.ts`):
 * the change records of the JSON API over plain HTTP, for background sync on
 * mobile and for server-side integrations. `Authorization: Bearer <device
 * JWT>` (the token of section 1). Each route runs the socket path's parsers
 * and services, under the same plan limits and rate limits (a batch of N
 * changes counts N events), and replies with the same acknowledgements or
 * `{ error: { code, message, retryAfterMs? } }` with its HTTP status. What an
 * HTTP write changes reaches the user's live sockets at once, through the
 * sync service's change feed.
 *
 *   GET  /v1/sync/changes?deviceId=&lastSyncTimestamp=&limit=&entities=&includeDeleted=
 *   POST /v1/sync/changes                { deviceId, changes: SyncChange[] }  → { results }
 *   GET  /v1/sync/status?deviceId=
 *   GET  /v1/sync/conflicts?deviceId=
 *   POST /v1/sync/conflicts/:conflictId  { winningVersion, mergedData?, deviceId? }
 */
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import type { Services } from '../services/index.js'
import type { SyncDocument } from '../services/sync-document.js'
import { InvalidTokenError, verifyToken, type TokenClaims } from '../services/token.service.js'
import { ErrorCode, SyncError, toProtocolError } from '../utils/errors.js'
import type { Logger } from '../utils/logger.js'
import type { Metrics } from '../utils/metrics.js'
import { payloadBytes, type EventLimiter } from '../websockets/event-limiter.js'
import { REVOKED_MESSAGE } from '../websockets/middleware/revocation.middleware.js'
import { parseConflictResolution, parseOperationChange } from '../websockets/payloads.js'
import {
  changesBody,
  changesPage,
  changesQuery,
  changesResults,
  conflictAck,
  conflictBody,
  conflictParams,
  deviceErrors,
  statusQuery,
  statusReply,
  conflictsReply,
} from './sync.schemas.js'
import { routeOf } from './http-errors.js'

export interface SyncRouteDeps {
  services: Services
  limiter: EventLimiter
  jwtSecret: string
  log: Logger
  metrics: Metrics
}

/** The resolving device of a conflict resolved over HTTP without a `deviceId`. */
const HTTP_DEVICE = 'http'
const tags = ['HTTP sync']
const security = [{ deviceToken: [] }]

export function registerSyncRoutes(app: FastifyInstance, deps: SyncRouteDeps): void {
  const { services, limiter, jwtSecret, log, metrics } = deps
  const routes = app.withTypeProvider<ZodTypeProvider>()
  /** Each request's verified token, set before its body is read or validated. */
  const tokens = new WeakMap<FastifyRequest, TokenClaims>()
  const onRequest = async (request: FastifyRequest): Promise<void> => {
    tokens.set(request, await authenticate(request, jwtSecret))
  }

  /** The device's token, and its request admitted (not revoked, within the rate limits as `events` events). */
  async function admit(request: FastifyRequest, deviceId: string, events: number, payload: unknown): Promise<TokenClaims> {
    const claims = tokens.get(request)
    if (!claims) throw new SyncError(ErrorCode.UNAUTHORIZED, 'no device token')
    // The rate limits first: a flood is refused before it costs a store read each.
    const refused = limiter.admitRequest(claims.plan, claims.userId, deviceId, events, payloadBytes(payload))
    if (refused) throw refused
    if (await services.operators.isRevoked(claims.userId, deviceId)) throw new SyncError(ErrorCode.REVOKED, REVOKED_MESSAGE)
    return claims
  }

  /** Runs `work` on the user's document, holding it loaded meanwhile. */
  async function withDocument<T>(userId: string, work: (doc: SyncDocument) => Promise<T>): Promise<T> {
    const lease = services.sync.openDocument(userId)
    try {
      // Cluster mode: another node owning the user is a LeaseHeldError, UNAVAILABLE naming it (HTTP has no `moved` yet).
      return await work(await lease.document)
    } finally {
      lease.release()
    }
  }

  routes.get(
    '/v1/sync/changes',
    {
      onRequest,
      schema: {
        tags,
        security,
        summary: 'One page of change records (a full sync without lastSyncTimestamp)',
        querystring: changesQuery,
        response: { 200: changesPage, ...deviceErrors },
      },
    },
    async (request) => {
      const { deviceId, ...query } = request.query
      const { userId } = await admit(request, deviceId, 1, request.query)
      return withDocument(userId, async (doc) => {
        const page = await services.sync.changePage(doc, userId, query)
        // The last page completes the device's sync, as on a socket (its status counts from it).
        if (!page.hasMore) services.sync.completeSync(doc, { deviceId, mode: 'changes', lastSyncTimestamp: page.serverTimestamp })
        return page
      })
    },
  )

  routes.post(
    '/v1/sync/changes',
    {
      onRequest,
      schema: {
        tags,
        security,
        summary: 'Apply a batch of changes, in order; one result per change',
        body: changesBody,
        response: { 200: changesResults, ...deviceErrors },
      },
    },
    async (request) => {
      const { deviceId, changes } = request.body
      const { userId, plan } = await admit(request, deviceId, changes.length, request.body)
      const author = { userId, deviceId }
      return withDocument(userId, async (doc) => {
        // Every change is applied in memory in this turn, in order, so the batch shares one group commit.
        const results = await Promise.all(
          changes.map(async (raw) => {
            try {
              const { requestId: _requestId, ...change } = parseOperationChange(raw, userId)
              const applied = await services.sync.applyChange(doc, change, author, plan)
              return { ok: true as const, ...applied.result }
            } catch (err) {
              if (!(err instanceof SyncError)) log.error({ err, userId, deviceId }, 'HTTP change failed')
              const error = toProtocolError(err)
              // A change refused inside the batch counts as the socket event it replaces would (requests: http-errors.ts).
              metrics.httpRefusals.inc({ route: routeOf(request), code: error.code })
              return { ok: false as const, error }
            }
          }),
        )
        return { results }
      })
    },
  )

  routes.get(
    '/v1/sync/status',
    {
      onRequest,
      schema: { tags, security, summary: "A device's sync status, the user's open conflicts and the plan", querystring: statusQuery, response: { 200: statusReply, ...deviceErrors } },
    },
    async (request) => {
      const { deviceId } = request.query
      const { userId, plan } = await admit(request, deviceId, 1, request.query)
      return withDocument(userId, async (doc) => {
        const status = await services.sync.status(doc, userId, deviceId, { live: false, inProgress: false, lastError: null })
        return { ...status, plan }
      })
    },
  )

  routes.get(
    '/v1/sync/conflicts',
    {
      onRequest,
      schema: { tags, security, summary: "The user's open conflicts, whole, oldest first (sync:conflicts)", querystring: statusQuery, response: { 200: conflictsReply, ...deviceErrors } },
    },
    async (request) => {
      const { userId } = await admit(request, request.query.deviceId, 1, request.query)
      return withDocument(userId, (doc) => Promise.resolve({ conflicts: services.sync.openConflicts(doc) }))
    },
  )

  routes.post(
    '/v1/sync/conflicts/:conflictId',
    {
      onRequest,
      schema: {
        tags,
        security,
        summary: 'Resolve a conflict: the chosen value is written as a new change',
        params: conflictParams,
        body: conflictBody,
        response: { 200: conflictAck, ...deviceErrors },
      },
    },
    async (request) => {
      const { deviceId = HTTP_DEVICE, ...body } = request.body
      const { userId, plan } = await admit(request, deviceId, 1, request.body)
      const resolution = parseConflictResolution({ ...body, conflictId: request.params.conflictId })
      return withDocument(userId, async (doc) => {
        const { conflict, version, serverTimestamp } = await services.sync.resolveConflict(doc, resolution, { userId, deviceId }, plan)
        return { ok: true as const, conflictId: conflict.id, entityId: conflict.entityId, version, serverTimestamp }
      })
    },
  )
}

/** The device token of `Authorization: Bearer <JWT>`; UNAUTHORIZED when missing, forged or expired. */
async function authenticate(request: FastifyRequest, jwtSecret: string): Promise<TokenClaims> {
  const match = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')
  try {
    return await verifyToken(jwtSecret, match?.[1])
  } catch (err) {
    const detail = err instanceof InvalidTokenError ? err.message : 'token could not be verified'
    throw new SyncError(ErrorCode.UNAUTHORIZED, `${detail}: send Authorization: Bearer <device token>`)
  }
}
