/**
 * The operators' HTTP API (protocol §9), `Authorization: Bearer <ADMIN_TOKEN>`:
 * users, their documents, snapshots (take, list, read, export, import,
 * delete), restore, trash, devices (disconnect, revoke), compaction and
 * erasure. Thin: each route validates with its schema, calls the operator
 * service and replies; errors are `{ error: { code, message } }` with 400,
 * 401, 404 or 413 (controllers/http-errors.ts).
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import type { OperatorService } from '../services/operators/operator.service.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import { ADMIN_SECURITY, adminGuard } from './admin-auth.js'
import {
  adminErrors,
  compactReply,
  deviceList,
  deviceParams,
  entityRef,
  importQuery,
  restoreBody,
  restoreReply,
  snapshotBody,
  snapshotList,
  snapshotMeta,
  snapshotParams,
  snapshotWithDocument,
  trashList,
  trashRestoreReply,
  userDocument,
  userParams,
  usersPage,
  usersQuery,
  userSummary,
} from './operator.schemas.js'

const tags = ['operators']

/** Replies 204 once `done` has. */
async function noContent(reply: FastifyReply, done: Promise<void>): Promise<FastifyReply> {
  await done
  return reply.code(204).send()
}
const security = ADMIN_SECURITY

export function registerOperatorRoutes(app: FastifyInstance, adminToken: string, operators: OperatorService): void {
  const routes = app.withTypeProvider<ZodTypeProvider>()
  const onRequest = adminGuard(adminToken)
  // Exported snapshots travel as their Yjs bytes.
  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer' }, (_request, body, done) => done(null, body))

  routes.get(
    '/admin/users',
    { onRequest, schema: { tags, security, summary: 'Users with sizes and activity, paged', querystring: usersQuery, response: { 200: usersPage, ...adminErrors } } },
    (request) => operators.listUsers(request.query.limit, request.query.cursor),
  )
  routes.get(
    '/admin/users/:userId',
    { onRequest, schema: { tags, security, summary: "A user's summary", params: userParams, response: { 200: userSummary, ...adminErrors } } },
    (request) => operators.user(request.params.userId),
  )
  routes.get(
    '/admin/users/:userId/document',
    { onRequest, schema: { tags, security, summary: "The user's document as JSON", params: userParams, response: { 200: userDocument, ...adminErrors } } },
    (request) => operators.document(request.params.userId),
  )
  routes.delete(
    '/admin/users/:userId',
    { onRequest, schema: { tags, security, summary: 'Erase the user: sockets closed, every key removed', params: userParams } },
    (request, reply) => noContent(reply, operators.erase(request.params.userId)),
  )
  routes.post(
    '/admin/users/:userId/compact',
    { onRequest, schema: { tags, security, summary: "Compact the user's update log now", params: userParams, response: { 200: compactReply, ...adminErrors } } },
    (request) => operators.compact(request.params.userId),
  )

  routes.post(
    '/admin/users/:userId/snapshots',
    {
      onRequest,
      schema: { tags, security, summary: 'Take a snapshot', params: userParams, body: snapshotBody, response: { 201: snapshotMeta, ...adminErrors } },
    },
    async (request, reply) => reply.code(201).send(await operators.takeSnapshot(request.params.userId, 'manual', request.body?.label)),
  )
  routes.get(
    '/admin/users/:userId/snapshots',
    { onRequest, schema: { tags, security, summary: 'Snapshots, newest first', params: userParams, response: { 200: snapshotList, ...adminErrors } } },
    async (request) => ({ snapshots: await operators.snapshots(request.params.userId) }),
  )
  routes.post(
    '/admin/users/:userId/snapshots/import',
    {
      onRequest,
      schema: {
        tags,
        security,
        summary: 'Import an exported snapshot (application/octet-stream: its Yjs update)',
        params: userParams,
        querystring: importQuery,
        response: { 201: snapshotMeta, ...adminErrors },
      },
    },
    async (request, reply) => {
      if (!(request.body instanceof Uint8Array)) throw new SyncError(ErrorCode.INVALID_PAYLOAD, 'send the snapshot as application/octet-stream')
      return reply.code(201).send(await operators.importSnapshot(request.params.userId, request.body, request.query.label))
    },
  )
  routes.get(
    '/admin/users/:userId/snapshots/:id',
    { onRequest, schema: { tags, security, summary: 'A snapshot with its document as JSON', params: snapshotParams, response: { 200: snapshotWithDocument, ...adminErrors } } },
    (request) => operators.snapshot(request.params.userId, request.params.id),
  )
  routes.get(
    '/admin/users/:userId/snapshots/:id/export',
    { onRequest, schema: { tags, security, summary: "A snapshot's Yjs state (application/octet-stream)", params: snapshotParams } },
    async (request, reply) => {
      const state = await operators.snapshotState(request.params.userId, request.params.id)
      return reply
        .type('application/octet-stream')
        .header('content-disposition', `attachment; filename="${request.params.userId}-${request.params.id}.yjs"`)
        .send(Buffer.from(state.buffer, state.byteOffset, state.byteLength))
    },
  )
  routes.delete(
    '/admin/users/:userId/snapshots/:id',
    { onRequest, schema: { tags, security, summary: 'Delete a snapshot', params: snapshotParams } },
    (request, reply) => noContent(reply, operators.deleteSnapshot(request.params.userId, request.params.id)),
  )

  routes.post(
    '/admin/users/:userId/restore',
    {
      onRequest,
      schema: {
        tags,
        security,
        summary: 'Restore to a snapshot or a time (optionally one entity), as forward changes',
        params: userParams,
        body: restoreBody,
        response: { 200: restoreReply, ...adminErrors },
      },
    },
    (request) => {
      const { snapshotId, at, entityType, entityId, dryRun } = request.body
      return operators.restore(request.params.userId, {
        ...(snapshotId === undefined ? {} : { snapshotId }),
        ...(at === undefined ? {} : { at }),
        ...(entityType === undefined || entityId === undefined ? {} : { scope: { entityType, entityId } }),
        ...(dryRun === undefined ? {} : { dryRun }),
      })
    },
  )

  routes.get(
    '/admin/users/:userId/trash',
    { onRequest, schema: { tags, security, summary: 'Soft-deleted entities, newest first', params: userParams, response: { 200: trashList, ...adminErrors } } },
    async (request) => ({ entities: await operators.trash(request.params.userId) }),
  )
  routes.post(
    '/admin/users/:userId/trash/restore',
    {
      onRequest,
      schema: { tags, security, summary: 'Revive one entity from the trash', params: userParams, body: entityRef, response: { 200: trashRestoreReply, ...adminErrors } },
    },
    async (request) => {
      const { entityType, entityId } = request.body
      return { entityType, entityId, ...(await operators.restoreFromTrash(request.params.userId, entityType, entityId)) }
    },
  )

  routes.get(
    '/admin/users/:userId/devices',
    { onRequest, schema: { tags, security, summary: "The user's devices", params: userParams, response: { 200: deviceList, ...adminErrors } } },
    async (request) => ({ devices: await operators.devices(request.params.userId) }),
  )
  routes.post(
    '/admin/users/:userId/devices/:deviceId/disconnect',
    { onRequest, schema: { tags, security, summary: "Close the device's sockets", params: deviceParams } },
    (request, reply) => noContent(reply, operators.disconnectDevice(request.params.userId, request.params.deviceId)),
  )
  routes.post(
    '/admin/users/:userId/devices/:deviceId/revoke',
    { onRequest, schema: { tags, security, summary: 'Revoke the device: disconnected now, refused (REVOKED) at every later connect', params: deviceParams } },
    (request, reply) => noContent(reply, operators.revoke(request.params.userId, request.params.deviceId)),
  )
  routes.delete(
    '/admin/users/:userId/devices/:deviceId/revoke',
    { onRequest, schema: { tags, security, summary: 'Unrevoke the device', params: deviceParams } },
    (request, reply) => noContent(reply, operators.unrevoke(request.params.userId, request.params.deviceId)),
  )
}
