/**
 * The seed (`sync.handler.spec.md`) is a contract other code is written
 * against: its declarations are copied here verbatim, and the repository's
 * exports are held to them. Type drift fails `npm run typecheck` (the
 * `expectTypeOf` lines); enum drift and behaviour fail the tests below, which
 * call the handlers exactly as the seed's usage lines do.
 */
/* eslint-disable @typescript-eslint/no-explicit-any, @typescript-eslint/no-unsafe-member-access -- the seed's own declarations, and a seed client reading its `any` fields */
import { io as connectClient, type Socket } from 'socket.io-client'
import { describe, expect, expectTypeOf, it } from 'vitest'
import type { AuthenticatedSocket } from '../src/websockets/middleware/auth.middleware.js'
import {
  broadcastEntityChange,
  getSyncStatus,
  handleEntityCreated,
  handleEntityDeleted,
  handleEntityUpdated,
  handleSyncConflictResolution,
  handleSyncRequest,
  handleSyncStatusRequest,
  registerSyncHandlers,
} from '../src/websockets/handlers/sync.handler.js'
import type { SyncServer } from '../src/websockets/types.js'
import {
  SyncEntityType,
  SyncEventType,
  SyncOperationType,
  type SyncChange,
  type SyncConflict,
  type SyncRequest,
  type SyncStatus,
} from '../src/types/sync.js'
import { waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { HttpSync } from './helpers/http-client.js'
import { tokenFor } from './helpers/server.js'

// ---- The seed's "Data Types", verbatim but for the names (Seed*) and the enums (ours, checked below).
interface SeedSyncChange {
  id: string
  entityType: SyncEntityType
  operationType: SyncOperationType
  timestamp: number
  deviceId: string
  userId: string
  data?: any
  version: number
}
interface SeedSyncRequest {
  deviceId: string
  entities?: SyncEntityType[]
  lastSyncTimestamp?: number
  limit?: number
  includeDeleted?: boolean
}
interface SeedSyncStatus {
  deviceId: string
  userId: string
  lastSyncTimestamp: number
  inProgress: boolean
  entityCounts: Record<SyncEntityType, number>
  lastError?: string
  pendingChanges: number
}
interface SeedSyncConflict {
  id: string
  entityType: SyncEntityType
  entityId: string
  serverVersion: any
  clientVersion: any
  timestamp: number
  resolved: boolean
  winningVersion?: 'server' | 'client' | 'merged'
  mergedData?: any
}
const SEED_EVENTS = {
  SYNC_REQUEST: 'sync:request',
  SYNC_RESPONSE: 'sync:response',
  SYNC_ERROR: 'sync:error',
  SYNC_COMPLETE: 'sync:complete',
  SYNC_STATUS: 'sync:status',
  SYNC_CONFLICT: 'sync:conflict',
  ENTITY_UPDATED: 'sync:entity_updated',
  ENTITY_CREATED: 'sync:entity_created',
  ENTITY_DELETED: 'sync:entity_deleted',
  SYNC_START: 'sync:start',
  SYNC_PAUSE: 'sync:pause',
  SYNC_RESUME: 'sync:resume',
}
const SEED_ENTITIES = { CLIP: 'clip', FOLDER: 'folder', SET: 'set', TAG: 'tag', TEMPLATE: 'template', SETTING: 'setting' }
const SEED_OPERATIONS = { CREATE: 'create', UPDATE: 'update', DELETE: 'delete' }

// ---- Interfaces: every seed field, by its seed name and type (additions allowed, protocol §§5-7).
expectTypeOf<Pick<SyncChange, keyof SeedSyncChange>>().toEqualTypeOf<SeedSyncChange>()
expectTypeOf<Pick<SyncRequest, keyof SeedSyncRequest>>().toEqualTypeOf<SeedSyncRequest>()
expectTypeOf<Pick<SyncStatus, keyof SeedSyncStatus>>().toEqualTypeOf<SeedSyncStatus>()
expectTypeOf<Pick<SyncConflict, keyof SeedSyncConflict>>().toEqualTypeOf<SeedSyncConflict>()

// ---- API/Methods: the seed's signatures (a typed Server<...> for socket.io's Server).
expectTypeOf(registerSyncHandlers).toEqualTypeOf<(io: SyncServer, socket: AuthenticatedSocket) => void>()
expectTypeOf(handleSyncRequest).toEqualTypeOf<(io: SyncServer, socket: AuthenticatedSocket, request: SyncRequest) => Promise<void>>()
expectTypeOf(handleEntityUpdated).toEqualTypeOf<(io: SyncServer, socket: AuthenticatedSocket, change: SyncChange) => Promise<void>>()
expectTypeOf(handleEntityCreated).toEqualTypeOf<(io: SyncServer, socket: AuthenticatedSocket, change: SyncChange) => Promise<void>>()
expectTypeOf(handleEntityDeleted).toEqualTypeOf<(io: SyncServer, socket: AuthenticatedSocket, change: SyncChange) => Promise<void>>()
expectTypeOf(broadcastEntityChange).toEqualTypeOf<(io: SyncServer, change: SyncChange, excludeSocket?: string) => Promise<void>>()
expectTypeOf(getSyncStatus).toEqualTypeOf<(socket: AuthenticatedSocket, deviceId: string) => Promise<SyncStatus>>()
expectTypeOf(handleSyncConflictResolution).toEqualTypeOf<
  (socket: AuthenticatedSocket, resolution: { conflictId: string; winningVersion: 'server' | 'client' | 'merged'; mergedData?: any }) => Promise<void>
>()
expectTypeOf(handleSyncStatusRequest).toEqualTypeOf<(socket: AuthenticatedSocket, deviceId: string) => Promise<void>>()

const pick = (e: object, keys: string[]) => Object.fromEntries(Object.entries(e).filter(([k]) => keys.includes(k)))

describe('the seed contract', () => {
  it("enums carry every seed member with the seed's value; our own members use other names and values", () => {
    for (const [ours, seed] of [
      [SyncEventType, SEED_EVENTS],
      [SyncEntityType, SEED_ENTITIES],
      [SyncOperationType, SEED_OPERATIONS],
    ] as const) {
      expect(pick(ours, Object.keys(seed))).toEqual(seed)
      const extra = Object.entries(ours).filter(([k]) => !(k in seed))
      for (const [, value] of extra) expect(Object.values(seed)).not.toContain(value)
    }
    expect(SyncEventType.SYNC_UPDATE).toBe('sync:update')
  })

  describe('handlers called by other code as the seed shows', () => {
    const t = useServer()

    /** A bare client of alice and the server's socket for it. */
    async function clientAndSocket(deviceId: string): Promise<{ client: Socket; socket: AuthenticatedSocket; events: [string, Record<string, unknown>][] }> {
      const client = t.track(connectClient(t.server.url, { auth: { token: await tokenFor('alice'), deviceId }, transports: ['websocket'], reconnection: false }))
      const events: [string, Record<string, unknown>][] = []
      client.onAny((event: string, payload: Record<string, unknown>) => events.push([event, payload]))
      await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('connect_error', reject))
      const socket = t.server.io.sockets.sockets.get(client.id ?? '')
      if (!socket) throw new Error('no server socket for the client')
      return { client, socket, events }
    }

    const change = (fields: Partial<SyncChange>): SyncChange => ({
      id: `change-${Math.random()}`,
      entityType: SyncEntityType.CLIP,
      operationType: SyncOperationType.CREATE,
      timestamp: Date.now(),
      deviceId: 'web',
      userId: 'alice',
      version: 0,
      ...fields,
    })

    it('create, update and delete through the handlers apply, broadcast to other JSON devices and report status', async () => {
      await t.start()
      const io = t.server.io
      const web = await clientAndSocket('web')
      const other = await t.jsonDevice('alice', 'tablet')

      await handleEntityCreated(io, web.socket, change({ entityId: 'c1', data: { content: 'hello', contentType: 'text' } }))
      await waitFor(() => other.live.length === 1, 'the created clip on the other device')
      expect(other.live[0]).toMatchObject({ operationType: 'create', entityId: 'c1', version: 1, data: { content: 'hello' } })

      await handleEntityUpdated(io, web.socket, change({ entityId: 'c1', operationType: SyncOperationType.UPDATE, version: 1, data: { title: 'T' } }))
      await handleEntityDeleted(io, web.socket, change({ entityId: 'c1', operationType: SyncOperationType.DELETE, version: 2 }))
      await waitFor(() => other.live.length === 3, 'update and delete on the other device')
      expect(other.live.map((c) => [c.operationType, c.version])).toEqual([
        ['create', 1],
        ['update', 2],
        ['delete', 3],
      ])

      const status = await getSyncStatus(web.socket, 'web')
      expect(status).toMatchObject({ userId: 'alice', deviceId: 'web', lastSyncTimestamp: 0, pendingChanges: 1, inProgress: false })
      expect(status.entityCounts.clip).toBe(0)
      // Another device of the same user: what is stored of it.
      expect(await getSyncStatus(web.socket, 'tablet')).toMatchObject({ deviceId: 'tablet', lastSyncTimestamp: expect.any(Number) })

      await handleSyncStatusRequest(web.socket, 'web')
      await waitFor(() => web.events.some(([e]) => e === 'sync:status'), 'sync:status on the client')
      expect(web.events.find(([e]) => e === 'sync:status')?.[1]).toMatchObject({ deviceId: 'web', plan: 'free', conflicts: [] })
    })

    it('a refused change changes nothing; with no ack to answer, the client hears sync:error and the promise resolves', async () => {
      await t.start()
      const web = await clientAndSocket('web')
      const other = await t.jsonDevice('alice', 'tablet')
      await expect(handleEntityUpdated(t.server.io, web.socket, change({ entityId: 'nope', operationType: SyncOperationType.UPDATE }))).resolves.toBeUndefined()
      await expect(handleEntityCreated(t.server.io, web.socket, change({ entityId: 'c1', data: { bogus: 1 } }))).resolves.toBeUndefined()
      await waitFor(() => web.events.filter(([e]) => e === 'sync:error').length === 2, 'two sync:error')
      expect(web.events.filter(([e]) => e === 'sync:error').map(([, p]) => [p.code, p.event])).toEqual([
        ['NOT_FOUND', 'sync:entity_updated'],
        ['INVALID_PAYLOAD', 'sync:entity_created'],
      ])
      expect((await other.status()).entityCounts.clip).toBe(0)
      expect(other.live).toEqual([])
    })

    it('a sync request, a conflict resolution and a broadcast through the handlers', async () => {
      await t.start()
      const io = t.server.io
      const writer = await t.jsonDevice('alice', 'writer')
      await writer.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0' } })
      await writer.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'A' }, version: 1 })
      const web = await clientAndSocket('web')

      await handleSyncRequest(io, web.socket, { deviceId: 'web' })
      await waitFor(() => web.events.some(([e]) => e === 'sync:complete'), 'sync:complete on the client')
      const response = web.events.find(([e]) => e === 'sync:response')?.[1] as unknown as { changes: SyncChange[] }
      expect(response.changes).toEqual([expect.objectContaining({ entityId: 'c1', operationType: 'create', version: 2, data: { content: 'A' } })])
      expect(web.events.map(([e]) => e)).toEqual(['sync:start', 'sync:response', 'sync:complete'])

      // A stale write of a manual field is a conflict; resolving it through the handler writes version 4.
      await handleEntityUpdated(io, web.socket, change({ entityId: 'c1', operationType: SyncOperationType.UPDATE, version: 1, data: { content: 'B' } }))
      await waitFor(() => writer.conflicts.length === 1, 'the conflict on the writer')
      const conflict = writer.conflicts[0] as SyncConflict
      expect(conflict).toMatchObject({ entityId: 'c1', resolved: false, timestamp: expect.any(Number), serverVersion: { value: 'A' }, clientVersion: { value: 'B' } })
      await handleSyncConflictResolution(web.socket, { conflictId: conflict.id, winningVersion: 'merged', mergedData: { content: 'A+B' } })
      await waitFor(() => writer.conflicts.length === 2, 'the resolved conflict on the writer')
      expect(writer.conflicts[1]).toMatchObject({ id: conflict.id, resolved: true, winningVersion: 'merged', mergedData: { content: 'A+B' } })
      await waitFor(() => writer.entity('clip', 'c1')?.data.content === 'A+B', 'the merged value on the writer')

      // Other code broadcasting a record of its own: every live JSON device but the excluded socket.
      const listener = await clientAndSocket('listener')
      await handleSyncRequest(io, listener.socket, { deviceId: 'listener' })
      const record = change({ id: 'srv:custom', entityId: 'c1', operationType: SyncOperationType.UPDATE, version: 4, data: { content: 'A+B' } })
      await broadcastEntityChange(io, record, listener.socket.id)
      await waitFor(() => writer.live.some((c) => c.id === 'srv:custom'), 'the broadcast on the writer')
      await listener.client.emitWithAck('sync:status', 'listener') // a round trip: what was sent before has arrived
      expect(listener.events.some(([e, p]) => e === 'sync:entity_updated' && p.id === 'srv:custom')).toBe(false)
    })
  })

  describe('a client written from the seed types alone', () => {
    const t = useServer()

    /** What a seed client sends: a SyncChange, every seed field filled. */
    const seedChange = (operationType: SyncOperationType, entityId: string, version: number, data: Record<string, unknown>): SyncChange & { entityId: string } => ({
      id: `${entityId}-${operationType}-${version}-${Math.random()}`,
      entityType: SyncEntityType.CLIP,
      operationType,
      timestamp: Date.now(),
      deviceId: 'seed',
      userId: 'alice',
      data,
      version,
      entityId,
    })

    it('syncs, writes, hears and resolves a conflict over Socket.IO, and the same records work over HTTP', async () => {
      await t.start()
      const token = await tokenFor('alice')
      const client = t.track(connectClient(t.server.url, { auth: { token, deviceId: 'seed' }, transports: ['websocket'], reconnection: false }))
      const seen: SyncChange[] = []
      const conflicts: SyncConflict[] = []
      client.on(SyncEventType.ENTITY_CREATED, (c: SyncChange) => seen.push(c))
      client.on(SyncEventType.ENTITY_UPDATED, (c: SyncChange) => seen.push(c))
      client.on(SyncEventType.SYNC_CONFLICT, (c: SyncConflict) => conflicts.push(c))
      const complete = new Promise((resolve) => client.once(SyncEventType.SYNC_COMPLETE, resolve))
      const request: SyncRequest = { deviceId: 'seed', includeDeleted: false }
      client.emit(SyncEventType.SYNC_REQUEST, request)
      await complete

      const other = await t.jsonDevice('alice', 'other')
      const ack = (await client.emitWithAck(SyncEventType.ENTITY_CREATED, seedChange(SyncOperationType.CREATE, 'c1', 0, { content: 'v0' }))) as { ok: boolean; version: number }
      expect(ack).toMatchObject({ ok: true, version: 1 })
      await other.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'theirs' }, version: 1 })
      await waitFor(() => seen.length === 1, 'the other device\'s update')
      expect(seen[0]).toMatchObject({ operationType: SyncOperationType.UPDATE, entityId: 'c1', version: 2 })

      // A write from a stale version of a manual field: a conflict with the seed's fields (nothing else of
      // the change applies, so the version stays 2; the resolution writes 3).
      await client.emitWithAck(SyncEventType.ENTITY_UPDATED, seedChange(SyncOperationType.UPDATE, 'c1', 1, { content: 'mine' }))
      await waitFor(() => conflicts.length === 1, 'the conflict')
      const conflict = conflicts[0] as SyncConflict
      expect(conflict).toMatchObject({ entityType: 'clip', entityId: 'c1', resolved: false, timestamp: expect.any(Number) })
      expect([conflict.serverVersion.value, conflict.clientVersion.value]).toEqual(['theirs', 'mine'])
      expect(conflict.winningVersion).toBeUndefined()
      await client.emitWithAck(SyncEventType.SYNC_CONFLICT, { conflictId: conflict.id, winningVersion: 'merged', mergedData: { content: 'both' } })
      await waitFor(() => conflicts.length === 2, 'the resolution')
      expect(conflicts[1]).toMatchObject({ id: conflict.id, resolved: true, winningVersion: 'merged', mergedData: { content: 'both' } })

      // The same records over HTTP.
      const http = new HttpSync(t.server.url, token, 'seed')
      const { body } = await http.send([seedChange(SyncOperationType.UPDATE, 'c1', 3, { title: 'over http' })])
      expect(body.results).toEqual([expect.objectContaining({ ok: true, version: 4 })])
      const page = await http.changes()
      const [record] = page.body.changes
      expect(record).toMatchObject({ entityType: SyncEntityType.CLIP, operationType: SyncOperationType.CREATE, version: 4, data: { content: 'both', title: 'over http' } })
      // The resolution's record went to the other devices, not to the resolver; the HTTP write comes to all.
      await waitFor(() => seen.length === 2, 'the HTTP write on the socket')
      expect(seen[1]).toMatchObject({ operationType: SyncOperationType.UPDATE, version: 4 })
    })
  })
})
