/**
 * HTTP sync (protocol §10): change-log pages, batches of changes,
 * status and conflict resolution over plain HTTP with a device's JWT, through
 * the same services, limits and error codes as the socket path; live sockets
 * see what HTTP writes at once.
 */
import { describe, expect, it } from 'vitest'
import { PLANS, type PlanLimits } from '../src/models/plans.js'
import { MAX_BATCH } from '../src/controllers/sync.schemas.js'
import { waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { changeOf, HttpSync } from './helpers/http-client.js'
import { TEST_SECRET, tokenFor } from './helpers/server.js'
import { signToken } from '../src/services/token.service.js'

const refusal = (code: string) => ({ ok: false, error: { code, message: expect.any(String) } })
const errorBody = (code: string) => ({ error: { code, message: expect.any(String) } })

describe('HTTP sync (protocol §10)', () => {
  const t = useServer()

  async function http(userId = 'alice', deviceId = 'worker', plan: 'free' | 'pro' = 'free'): Promise<HttpSync> {
    return new HttpSync(t.server.url, await tokenFor(userId, plan), deviceId)
  }

  it('a batch applies in order with one result per change; pages, cursors and filters work as on a socket', async () => {
    await t.start()
    const h = await http()
    const batch = await h.send([
      changeOf('create', 'c1', { content: 'one', contentType: 'text' }),
      changeOf('create', 'c2', { content: 'two' }),
      changeOf('create', 'f1', { name: 'Work' }, 0, 'folder'),
      changeOf('update', 'c1', { title: 'first' }, 1),
      changeOf('create', 'bad', { bogus: 1 }),
      { ...changeOf('create', 'nope', {}), operationType: undefined },
      { ...changeOf('create', 'theirs', { content: 'x' }), userId: 'mallory' },
      changeOf('update', 'missing', { title: 'x' }, 1),
    ])
    expect(batch.status).toBe(200)
    const results = batch.body.results
    expect(results.slice(0, 4)).toEqual([
      { ok: true, entityId: 'c1', version: 1, serverTimestamp: expect.any(Number), conflicts: [] },
      { ok: true, entityId: 'c2', version: 1, serverTimestamp: expect.any(Number), conflicts: [] },
      { ok: true, entityId: 'f1', version: 1, serverTimestamp: expect.any(Number), conflicts: [] },
      { ok: true, entityId: 'c1', version: 2, serverTimestamp: expect.any(Number), conflicts: [] },
    ])
    expect(results.slice(4)).toEqual([refusal('INVALID_PAYLOAD'), refusal('INVALID_PAYLOAD'), refusal('FORBIDDEN'), refusal('NOT_FOUND')])

    // A full sync: one create per live entity, the folder first.
    const full = await h.changes()
    expect(full.status).toBe(200)
    expect(full.body.changes.map((c) => [c.entityType, c.entityId, c.operationType, c.version])).toEqual([
      ['folder', 'f1', 'create', 1],
      ['clip', 'c2', 'create', 1],
      ['clip', 'c1', 'create', 2],
    ])
    expect(full.body.changes[2]).toMatchObject({ userId: 'alice', deviceId: 'worker', data: { content: 'one', contentType: 'text', title: 'first' } })
    expect(full.body.hasMore).toBe(false)

    // Paging and filtering by type, resuming at the cursor.
    const page1 = await h.changes({ limit: 1, entities: 'clip' })
    expect(page1.body).toMatchObject({ hasMore: true, changes: [{ entityId: 'c2' }] })
    const page2 = await h.changes({ limit: 1, entities: 'clip', lastSyncTimestamp: page1.body.cursor })
    expect(page2.body).toMatchObject({ hasMore: false, changes: [{ entityId: 'c1', operationType: 'update' }] })

    // Incremental: only what changed after the cursor, a delete as a delete.
    const del = await h.send([changeOf('delete', 'c2', {}, 1)])
    expect(del.body.results).toEqual([expect.objectContaining({ ok: true, version: 2 })])
    const since = await h.changes({ lastSyncTimestamp: full.body.cursor })
    expect(since.body.changes.map((c) => [c.entityId, c.operationType])).toEqual([['c2', 'delete']])
  })

  it('a change resent with the same id is acknowledged again and not applied twice', async () => {
    await t.start()
    const h = await http()
    const create = changeOf('create', 'c1', { content: 'v1' })
    const update = changeOf('update', 'c1', { title: 'once' }, 1)
    const first = await h.send([create, update])
    const again = await h.send([create, update])
    expect(again.body).toEqual(first.body)
    expect((await h.changes()).body.changes).toEqual([expect.objectContaining({ entityId: 'c1', version: 2 })])
  })

  it('live sockets see HTTP-made changes at once: Yjs devices get the update, JSON devices the change records', async () => {
    await t.start()
    const y = await t.device('alice', 'phone')
    const j = await t.jsonDevice('alice', 'web')
    const other = await t.jsonDevice('bob', 'web')
    const h = await http()
    await h.send([changeOf('create', 'c1', { content: 'from http', tagIds: ['t1'] })])
    await waitFor(() => y.clips().get('c1')?.get('content') === 'from http', 'the clip on the Yjs device')
    await waitFor(() => j.live.length === 1, 'the change record on the JSON device')
    expect(j.live[0]).toMatchObject({ operationType: 'create', entityType: 'clip', entityId: 'c1', deviceId: 'worker', version: 1 })
    await h.send([changeOf('update', 'c1', { content: 'edited' }, 1)])
    await waitFor(() => j.live.length === 2, 'the update on the JSON device')
    expect(j.live[1]).toMatchObject({ operationType: 'update', version: 2, data: { content: 'edited', tagIds: ['t1'] } })
    await other.barrier()
    expect(other.live).toEqual([])
  })

  it('status and conflict resolution over HTTP; the resolution reaches every socket', async () => {
    await t.start()
    const h = await http()
    const j = await t.jsonDevice('alice', 'web')
    await h.send([changeOf('create', 'c1', { content: 'v0' })])
    await h.send([changeOf('update', 'c1', { content: 'A' }, 1)])
    const stale = await h.send([changeOf('update', 'c1', { content: 'B', title: 'kept' }, 1)])
    const [ack] = stale.body.results
    expect(ack).toMatchObject({ ok: true, version: 3, conflicts: [expect.any(String)] })
    const conflictId = ack?.ok ? (ack.conflicts[0] ?? '') : ''
    await waitFor(() => j.conflicts.length === 1, 'the conflict on the socket')
    expect(j.conflicts[0]).toMatchObject({ id: conflictId, field: 'content', timestamp: expect.any(Number), serverVersion: { value: 'A' }, clientVersion: { value: 'B', deviceId: 'worker' } })

    const status = await h.status()
    expect(status.body).toMatchObject({ userId: 'alice', deviceId: 'worker', conflicts: [conflictId], plan: 'free', entityCounts: { clip: 1 }, pendingChanges: 1 })
    // The open conflicts, whole, as sync:conflicts acknowledges them.
    const open = await h.request('GET', '/v1/sync/conflicts?deviceId=worker')
    expect(open).toMatchObject({ status: 200, body: { conflicts: [{ id: conflictId, entityId: 'c1', field: 'content', serverVersion: { value: 'A' }, clientVersion: { value: 'B' }, resolved: false }] } })
    expect(await h.request('GET', '/v1/sync/conflicts')).toMatchObject({ status: 400, body: errorBody('INVALID_PAYLOAD') })

    const resolved = await h.resolve(conflictId, { winningVersion: 'client', deviceId: 'worker' })
    expect(resolved).toMatchObject({ status: 200, body: { ok: true, conflictId, entityId: 'c1', version: 4, serverTimestamp: expect.any(Number) } })
    await waitFor(() => j.conflicts.length === 2, 'the resolved conflict on the socket')
    expect(j.conflicts[1]).toMatchObject({ id: conflictId, resolved: true, winningVersion: 'client' })
    await waitFor(() => j.entity('clip', 'c1')?.data.content === 'B', 'the chosen value on the socket')
    expect(await h.resolve(conflictId, { winningVersion: 'server' })).toMatchObject({ status: 404, body: errorBody('CONFLICT_NOT_FOUND') })
    expect(await h.resolve('x', { winningVersion: 'sideways' })).toMatchObject({ status: 400, body: errorBody('INVALID_PAYLOAD') })

    // After a full sync over HTTP the device has nothing pending.
    await h.changes()
    expect((await h.status()).body).toMatchObject({ pendingChanges: 0, lastSyncTimestamp: expect.any(Number), conflicts: [] })
    expect((await h.request('GET', '/v1/sync/conflicts?deviceId=worker')).body).toEqual({ conflicts: [] })
  })

  it('refusals: a missing, forged or expired token is 401; a bad request 400; a body over the limit 413; nothing is applied', async () => {
    await t.start(undefined, { maxMessageBytes: 64 * 1024 })
    const good = await http()
    const expectNothingStored = async () => expect((await good.changes()).body.changes).toEqual([])
    const forged = await signToken('another-secret-another-secret-another-secret', { userId: 'alice' })
    const expired = await signToken(TEST_SECRET, { userId: 'alice', expiresIn: -10 })
    for (const token of [undefined, 'not-a-jwt', forged, expired]) {
      const h = new HttpSync(t.server.url, token, 'worker')
      for (const reply of [await h.send([changeOf('create', 'c1', { content: 'x' })]), await h.changes(), await h.status(), await h.resolve('x', { winningVersion: 'server' })]) {
        expect(reply).toMatchObject({ status: 401, body: errorBody('UNAUTHORIZED') })
      }
    }
    expect((await new HttpSync(t.server.url, expired, 'w').status()).body.error).toMatchObject({ message: expect.stringContaining('expired') })
    // The token is checked before the request is read: no token, no validation details.
    expect(await new HttpSync(t.server.url, undefined, 'bad device id').send([{}])).toMatchObject({ status: 401, body: errorBody('UNAUTHORIZED') })

    const badDevice = new HttpSync(t.server.url, good.token, 'bad device id')
    expect(await badDevice.send([changeOf('create', 'c1', { content: 'x' })])).toMatchObject({ status: 400, body: errorBody('INVALID_PAYLOAD') })
    expect(await badDevice.changes()).toMatchObject({ status: 400, body: { error: { message: expect.stringContaining('deviceId') } } })
    const tooMany = Array.from({ length: MAX_BATCH + 1 }, () => ({}))
    expect(await good.send(tooMany)).toMatchObject({ status: 400, body: errorBody('INVALID_PAYLOAD') })
    expect(await good.send([])).toMatchObject({ status: 400, body: errorBody('INVALID_PAYLOAD') })
    expect(await good.changes({ limit: 0 })).toMatchObject({ status: 400, body: errorBody('INVALID_PAYLOAD') })
    expect(await good.request('POST', '/v1/sync/changes', '{"deviceId": "w", "changes": [')).toMatchObject({ status: 400, body: errorBody('INVALID_PAYLOAD') })
    expect(await good.request('POST', '/v1/sync/changes', '{"deviceId":"w","changes":[{"__proto__":{"x":1}}]}')).toMatchObject({ status: 400, body: errorBody('INVALID_PAYLOAD') })
    const big = changeOf('create', 'big', { content: 'x'.repeat(70 * 1024) })
    expect(await good.send([big])).toMatchObject({ status: 413, body: errorBody('PAYLOAD_TOO_LARGE') })
    await expectNothingStored()
  })

  it("the plan's limits hold: RATE_LIMITED 429 with Retry-After, QUOTA_EXCEEDED 403; HTTP and sockets share the user's buckets", async () => {
    const free: Partial<PlanLimits> = { userEvents: { perSecond: 0.001, burst: 6 }, entitiesPerType: 2 }
    await t.start(undefined, { plans: { free: { ...PLANS.free, ...free }, pro: PLANS.pro } })
    const h = await http()
    const socket = await t.unsyncedJsonDevice('alice', 'web')
    // A batch of three changes is three events: 3 of 6.
    const three = await h.send([changeOf('create', 'c1', { content: 'a' }), changeOf('create', 'c2', { content: 'b' }), changeOf('create', 'c3', { content: 'c' })])
    expect(three.body.results.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(['ok', 'ok', 'QUOTA_EXCEEDED'])
    await socket.status() // 4 of 6, on the socket
    expect((await h.status()).status).toBe(200) // 5
    expect((await h.changes()).status).toBe(200) // 6
    const limited = await h.status()
    expect(limited).toMatchObject({ status: 429, body: { error: { code: 'RATE_LIMITED', message: expect.any(String), retryAfterMs: expect.any(Number) } } })
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1)
    expect(await h.send([changeOf('create', 'c4', { content: 'd' })])).toMatchObject({ status: 429 })
    const { reply } = await socket.syncPage()
    expect(reply).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } })
  })

  it('GET /admin/openapi.json: an OpenAPI 3 document of the HTTP sync routes, generated from their schemas; admin token only', async () => {
    const server = await t.start()
    const get = (token?: string) => new HttpSync(server.url, token, 'x').request('GET', '/admin/openapi.json')
    expect(await get()).toMatchObject({ status: 401, body: errorBody('UNAUTHORIZED') })
    expect(await get(await tokenFor('alice'))).toMatchObject({ status: 401 })
    const { status, body } = await get(server.config.adminToken)
    expect(status).toBe(200)
    const doc = body as { openapi: string; paths: Record<string, Record<string, { requestBody?: unknown; parameters?: { name: string }[]; responses: Record<string, unknown> }>> }
    expect(doc.openapi).toMatch(/^3\./)
    expect(Object.keys(doc.paths['/v1/sync/changes'] ?? {}).sort()).toEqual(['get', 'post'])
    expect(doc.paths['/v1/sync/changes']?.get?.parameters?.map((p) => p.name).sort()).toEqual(['deviceId', 'entities', 'includeDeleted', 'lastSyncTimestamp', 'limit'])
    expect(JSON.stringify(doc.paths['/v1/sync/changes']?.post?.requestBody)).toContain(`"maxItems":${MAX_BATCH}`)
    expect(Object.keys(doc.paths['/v1/sync/changes']?.get?.responses ?? {})).toEqual(expect.arrayContaining(['200', '400', '401', '429']))
    expect(doc.paths['/v1/sync/status']?.get).toBeDefined()
    expect(doc.paths['/v1/sync/conflicts/{conflictId}']?.post?.parameters?.map((p) => p.name)).toEqual(['conflictId'])
    expect(doc.paths['/v1/sync/conflicts']?.get?.parameters?.map((p) => p.name)).toEqual(['deviceId'])
    expect(doc.paths['/admin/metrics']?.get).toBeDefined()
  })
})
