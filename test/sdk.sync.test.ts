/**
 * The client SDK (`@superclip/sync-client`) against the real server: entity
 * API, pending changes and acknowledgements, conflicts both ways, the
 * server's open-conflict list, `moved` redirects, refused tokens, progress.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Server } from 'socket.io'
import * as defaultParser from 'socket.io-parser'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { type Conflict, SyncClientError, type ChangeEvent, type SyncProgress } from '@superclip/sync-client'
import { freePort } from './helpers/child-server.js'
import { snapshot, waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { allSynced, useClients } from './helpers/sdk.js'
import { PLANS } from '../src/models/plans.js'
import { holdNextWrite, tokenFor } from './helpers/server.js'

describe('SDK sync', () => {
  const t = useServer()
  const c = useClients()

  it('creates, updates and deletes entities that reach the other devices; text and list fields are Y types', async () => {
    await t.start()
    const token = await tokenFor('alice')
    const a = c.client({ url: t.server.url, token, deviceId: 'a' })
    const b = c.client({ url: t.server.url, token, deviceId: 'b' })
    const folder = a.folders.create({ name: 'Work', order: 1 })
    const clip = a.clips.create({ content: 'hello', contentType: 'text', folderId: folder, tagIds: ['t1'] })
    const template = a.templates.create({ name: 'Sig', body: 'Regards' }, { id: 'sig' })
    expect(template).toBe('sig')
    a.templates.get('sig')!.body!.insert(7, ', A')
    a.clips.get(clip)!.tagIds!.push(['t2'])
    await allSynced([a, b])
    await waitFor(() => b.clips.get(clip)?.tagIds?.length === 2 && b.templates.get('sig')?.body?.toJSON() === 'Regards, A', 'b to see the edits')
    expect(b.clips.get(clip)).toMatchObject({ id: clip, content: 'hello', folderId: folder, createdAt: expect.any(Number) })
    expect(b.clips.get(clip)!.tagIds!.toArray()).toEqual(['t1', 't2'])

    b.clips.update(clip, { title: 'greeting', pinned: true, tagIds: ['t3'] })
    b.folders.delete(folder)
    await allSynced([b])
    await waitFor(() => a.folders.get(folder) === undefined, 'the delete to reach a')
    expect(a.folders.get(folder, { includeDeleted: true })).toMatchObject({ _deleted: true, deletedAt: expect.any(Number) })
    expect(a.folders.list()).toEqual([])
    expect(a.clips.get(clip)).toMatchObject({ title: 'greeting', pinned: true })
    expect(a.clips.get(clip)!.tagIds!.toArray()).toEqual(['t3'])
    // A deleted entity is revived by create with its id.
    a.folders.create({ name: 'Work again' }, { id: folder })
    await allSynced([a])
    await waitFor(() => b.folders.get(folder)?.name === 'Work again', 'the revival to reach b')
    expect(snapshot(a.doc)).toEqual(snapshot(b.doc))
  })

  it("with socket.io-client's default parser in socketOptions, it does not ask for single messages and still gets every relay", async () => {
    await t.start()
    const token = await tokenFor('alice')
    const plain = c.client({ url: t.server.url, token, deviceId: 'plain', socketOptions: { parser: defaultParser } })
    const other = c.client({ url: t.server.url, token, deviceId: 'other' })
    await allSynced([plain, other])
    const clip = other.clips.create({ content: 'relayed to a default parser' })
    await allSynced([other])
    await waitFor(() => plain.clips.get(clip)?.content === 'relayed to a default parser', 'the relay on the plain device')
    expect(plain.status).toBe('synced')
  })

  it('refuses a write outside the schema before it touches the document', async () => {
    await t.start()
    const a = c.client({ url: t.server.url, token: await tokenFor('alice'), deviceId: 'a', autoConnect: false })
    const id = a.clips.create({ content: 'x' })
    const before = Y.encodeStateVector(a.doc)
    const refusals: [() => unknown, string, string][] = [
      [() => a.clips.create({ content: 42 as unknown as string }), 'INVALID_PAYLOAD', 'content: expected a string'],
      [() => a.clips.create({ nope: 1 } as object), 'INVALID_PAYLOAD', 'nope is not a field of clip'],
      [() => a.clips.update(id, { contentType: 'video' as 'text' }), 'INVALID_PAYLOAD', 'contentType: expected one of'],
      [() => a.clips.update(id, { _deleted: true } as object), 'INVALID_PAYLOAD', '_deleted is not a field of clip'],
      [() => a.clips.update('missing', { title: 't' }), 'NOT_FOUND', 'clip missing does not exist'],
      [() => a.clips.create({ content: 'y' }, { id }), 'INVALID_PAYLOAD', `clip ${id} already exists`],
      [() => a.settings.create({ value: { ['constructor']: 1 } }), 'INVALID_PAYLOAD', 'the key constructor is not allowed'],
      [() => a.folders.create({ order: Number.NaN }), 'INVALID_PAYLOAD', 'order: expected a finite number'],
      [() => a.tags.delete('missing'), 'NOT_FOUND', 'tag missing does not exist'],
    ]
    for (const [write, code, message] of refusals) {
      let error: unknown
      try {
        write()
      } catch (err) {
        error = err
      }
      expect(error, message).toBeInstanceOf(SyncClientError)
      expect((error as SyncClientError).code).toBe(code)
      expect((error as SyncClientError).message).toContain(message)
    }
    expect(Y.encodeStateVector(a.doc)).toEqual(before)
    expect(a.pendingChanges).toBe(1)
  })

  it('counts an edit as pending until the server has stored and acknowledged it', async () => {
    await t.start()
    const token = await tokenFor('alice')
    const a = c.client({ url: t.server.url, token, deviceId: 'a' })
    const b = c.client({ url: t.server.url, token, deviceId: 'b' })
    await allSynced([a, b])
    const counts: number[] = []
    a.on('pending', (n) => counts.push(n))
    const release = holdNextWrite(t.server)
    const id = a.clips.create({ content: 'held' })
    expect(a.pendingChanges).toBe(1)
    // The server has the update in memory, its write is held: the other device has it already
    // (relays go out before durability), but no ack, so it is still pending on the author.
    await waitFor(() => b.clips.get(id)?.content === 'held', 'the relay on b')
    await new Promise((r) => setTimeout(r, 300))
    expect(a.pendingChanges).toBe(1)
    release()
    await a.whenSynced()
    expect(a.pendingChanges).toBe(0)
    expect(counts).toEqual([1, 0])
    // Acknowledged means stored: a device that connects now gets it from the server.
    const fresh = c.client({ url: t.server.url, token, deviceId: 'fresh' })
    await allSynced([fresh])
    expect(fresh.clips.get(id)?.content).toBe('held')
  })

  it('reports change events by origin and initial-sync progress', async () => {
    await t.start()
    const token = await tokenFor('alice')
    const a = c.client({ url: t.server.url, token, deviceId: 'a' })
    for (let i = 0; i < 20; i++) a.clips.create({ content: `clip ${i}` })
    await allSynced([a])
    const b = c.client({ url: t.server.url, token, deviceId: 'b' })
    const events: ChangeEvent[] = []
    const progress: SyncProgress[] = []
    b.on('change', (e) => events.push(e))
    b.on('progress', (p) => progress.push(p))
    await allSynced([b])
    await waitFor(() => b.progress.phase === 'done', 'the upload of its diff')
    expect(progress.map((p) => p.phase)).toEqual(['connecting', 'requesting', 'applying', 'uploading', 'done'])
    expect(progress[2]!.receivedBytes).toBeGreaterThan(200)
    expect(events).toEqual([{ origin: 'remote', changes: expect.arrayContaining([expect.objectContaining({ entityType: 'clip', action: 'created' })]) }])
    expect(events[0]!.changes).toHaveLength(20)
    const [first] = b.clips.list()
    b.clips.delete(first!.id)
    expect(events[1]).toEqual({ origin: 'local', changes: [{ entityType: 'clip', id: first!.id, action: 'deleted' }] })
  })

  for (const order of ['the offline device', 'the online device'] as const) {
    it(`surfaces a conflict with both values on both devices and resolves it (Yjs order favours ${order})`, async () => {
      await t.start()
      const token = await tokenFor('alice')
      const online = c.client({ url: t.server.url, token, deviceId: 'online' })
      const offline = c.client({ url: t.server.url, token, deviceId: 'offline' })
      // Higher client ids win concurrent map writes in Yjs.
      online.doc.clientID = order === 'the online device' ? 2_000_000 : 1_000_000
      offline.doc.clientID = order === 'the online device' ? 1_000_000 : 2_000_000
      const id = online.clips.create({ content: 'v0' })
      await allSynced([online])
      await waitFor(() => offline.clips.get(id) !== undefined, 'the clip on the other device')
      offline.disconnect()
      online.clips.update(id, { content: 'from online' })
      offline.clips.update(id, { content: 'from offline' })
      await allSynced([online])
      const seen = { online: [] as Conflict[], offline: [] as Conflict[] }
      online.on('conflict', (x) => seen.online.push(x))
      offline.on('conflict', (x) => seen.offline.push(x))
      offline.connect()
      await allSynced([offline])
      await waitFor(() => seen.online.length === 1 && seen.offline.length === 1, 'the conflict on both devices')
      for (const device of [online, offline]) {
        expect(device.conflicts).toHaveLength(1)
        expect(device.conflicts[0]).toMatchObject({
          entityType: 'clip',
          entityId: id,
          field: 'content',
          resolved: false,
          serverVersion: { value: 'from online', deviceId: 'online' },
          clientVersion: { value: 'from offline', deviceId: 'offline' },
        })
      }
      // The server kept its value; both devices converge on it.
      await waitFor(() => offline.clips.get(id)?.content === 'from online', 'the kept value on the offline device')
      const resolution = await offline.conflicts[0]!.resolve('client')
      expect(resolution).toMatchObject({ ok: true, entityId: id, version: expect.any(Number) })
      await waitFor(() => online.conflicts.length === 0 && offline.conflicts.length === 0, 'the resolution on both devices')
      await waitFor(() => online.clips.get(id)?.content === 'from offline' && offline.clips.get(id)?.content === 'from offline', 'the resolved value')
      expect(seen.online.at(-1)).toMatchObject({ resolved: true, winningVersion: 'client' })
      await expect(seen.online[0]!.resolve('server')).rejects.toMatchObject({ code: 'CONFLICT_NOT_FOUND' })
    })
  }

  it('lists the conflicts raised while a device was away when it syncs, and resolves them as merged', async () => {
    await t.start()
    const token = await tokenFor('alice')
    const a = c.client({ url: t.server.url, token, deviceId: 'a' })
    const b = c.client({ url: t.server.url, token, deviceId: 'b' })
    const id = a.clips.create({ content: 'v0' })
    await allSynced([a])
    await waitFor(() => b.clips.get(id) !== undefined, 'the clip on b')
    b.disconnect()
    a.clips.update(id, { content: 'a' })
    b.clips.update(id, { content: 'b' })
    await allSynced([a])
    b.connect()
    await allSynced([b])
    await waitFor(() => a.conflicts.length === 1, 'the conflict')
    const late = c.client({ url: t.server.url, token, deviceId: 'late' })
    await allSynced([late])
    await waitFor(() => late.conflicts.length === 1, "the late device's conflict list")
    expect(late.conflicts[0]).toMatchObject({ entityId: id, serverVersion: { value: 'a', deviceId: 'a' }, clientVersion: { value: 'b', deviceId: 'b' } })
    await late.conflicts[0]!.resolve('merged', { content: 'a+b' })
    await waitFor(() => [a, b, late].every((x) => x.conflicts.length === 0 && x.clips.get(id)?.content === 'a+b'), 'the merge everywhere')
  })

  it('follows a moved redirect to the node that owns the user', async () => {
    await t.start()
    const http = createServer()
    const redirector = new Server(http)
    let refused = 0
    redirector.use((_socket, next) => {
      refused += 1
      next(Object.assign(new Error('moved'), { data: { code: 'MOVED', message: 'alice is served by another node', url: t.server.url } }))
    })
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
    try {
      const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}`
      const a = c.client({ url, token: await tokenFor('alice'), deviceId: 'a' })
      a.clips.create({ content: 'via the owner' })
      await allSynced([a])
      expect(refused).toBe(1)
      expect(a.url).toBe(t.server.url)
    } finally {
      await redirector.close()
    }
  })

  it('goes back to its configured URL when the node a moved pointed to cannot be reached', async () => {
    await t.start()
    // A dead node: a port with nothing listening.
    const deadUrl = `http://127.0.0.1:${await freePort()}`
    let redirected = 0
    t.server.io.use((_socket, next) => {
      if (redirected++ > 0) return next()
      next(Object.assign(new Error('moved'), { data: { code: 'MOVED', message: 'alice is served by another node', url: deadUrl } }))
    })
    const a = c.client({ url: t.server.url, token: await tokenFor('alice'), deviceId: 'a', backoff: { initialDelayMs: 50 } })
    const urls: string[] = []
    a.on('progress', (p) => p.phase === 'connecting' && urls.push(a.url))
    await allSynced([a])
    expect(urls).toEqual([t.server.url, deadUrl, t.server.url])
    expect(a.url).toBe(t.server.url)
  })

  it('stops on a refused token and reconnects with a new one; a token function is asked at each attempt', async () => {
    await t.start()
    const errors: SyncClientError[] = []
    const a = c.client({ url: t.server.url, token: 'x.eyJzdWIiOiJhbGljZSJ9.forged', deviceId: 'a' })
    a.on('error', (e) => errors.push(e))
    await expect(a.whenSynced()).rejects.toMatchObject({ code: 'UNAUTHORIZED' })
    expect(a.status).toBe('offline')
    a.setToken(await tokenFor('alice'))
    await allSynced([a])
    expect(errors.map((e) => e.code)).toEqual(['UNAUTHORIZED'])

    // Asked once to name the local store, then at each connection attempt.
    let asked = 0
    const [expiring, fresh] = [await tokenFor('bob', 'free', '1s'), await tokenFor('bob')]
    const b = c.client({ url: t.server.url, token: () => (asked++ < 2 ? expiring : fresh), deviceId: 'b' })
    await allSynced([b])
    // The first token expires while connected: the server disconnects, the function gives a fresh one.
    await waitFor(() => asked >= 3 && b.status === 'synced', 'a reconnect with a fresh token', 15_000)
    b.clips.create({ content: 'after renewal' })
    await allSynced([b])
  })

  it('waits out a rate limit and syncs again by state vector: every edit arrives, none is counted as acknowledged before it is', async () => {
    const slow = { perSecond: 20, burst: 5 }
    await t.start(undefined, { plans: { ...PLANS, free: { ...PLANS.free, socketEvents: slow } } })
    const token = await tokenFor('alice')
    const a = c.client({ url: t.server.url, token, deviceId: 'a' })
    await allSynced([a])
    const errors: SyncClientError[] = []
    a.on('error', (e) => errors.push(e))
    const statuses: string[] = []
    a.on('status', (s) => statuses.push(s))
    const ids: string[] = []
    for (let i = 0; i < 40; i++) {
      ids.push(a.clips.create({ content: `burst ${i}` }))
      await new Promise((resolve) => setTimeout(resolve, 1))
    }
    await allSynced([a])
    expect(statuses).toContain('syncing')
    expect(errors).toEqual([])
    const fresh = c.client({ url: t.server.url, token, deviceId: 'fresh' })
    await allSynced([fresh])
    expect(fresh.clips.list().map((x) => x.id).sort()).toEqual(ids.sort())
  })

  it('a resync pending when the connection drops does not stop the next connection from resyncing after its own refusals', async () => {
    const slow = { perSecond: 20, burst: 5 }
    await t.start(undefined, { plans: { ...PLANS, free: { ...PLANS.free, socketEvents: slow } } })
    const token = await tokenFor('alice')
    const a = c.client({ url: t.server.url, token, deviceId: 'a', backoff: { initialDelayMs: 50 } })
    await allSynced([a])
    const burst = async (n: number) => {
      for (let i = 0; i < n && a.status === 'synced'; i++) {
        a.clips.create({ content: `burst ${i}` })
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
    }
    // Refused: a resync is scheduled after retryAfterMs; the connection drops before it runs.
    await burst(200)
    expect(a.status).toBe('syncing')
    a.disconnect()
    a.connect()
    await allSynced([a])
    // Refused again on the new connection: it must resync by itself.
    await burst(200)
    expect(a.status).toBe('syncing')
    await allSynced([a])
    const fresh = c.client({ url: t.server.url, token, deviceId: 'fresh' })
    await allSynced([fresh])
    expect(fresh.clips.list()).toHaveLength(a.clips.list().length)
  })

  it('reports an update the server refuses, and whenSynced rejects until it is fixed', async () => {
    await t.start()
    const a = c.client({ url: t.server.url, token: await tokenFor('alice'), deviceId: 'a' })
    await allSynced([a])
    const errors: SyncClientError[] = []
    a.on('error', (e) => errors.push(e))
    a.doc.getMap('clips').set('bad', 'not an entity map')
    await expect(a.whenSynced()).rejects.toMatchObject({ code: 'INVALID_UPDATE', message: expect.stringContaining('clip bad') })
    expect(errors).toHaveLength(1)
    expect(a.pendingChanges).toBe(1)
  })
})
