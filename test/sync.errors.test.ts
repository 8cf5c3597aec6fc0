import { io, type Socket } from 'socket.io-client'
import * as Y from 'yjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { YjsDevice } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { startServer, tokenFor, type TestServer } from './helpers/server.js'

describe('bad input is a clear error and changes nothing (protocol §2)', () => {
  let server: TestServer
  let socket: Socket
  let device: YjsDevice
  const errors: unknown[] = []

  beforeAll(async () => {
    server = await startServer()
    device = await YjsDevice.connect(server.url, await tokenFor('alice'), 'good')
    device.addClip('c1', 'before')
    await device.flushed()
    socket = io(server.url, { auth: { token: await tokenFor('alice'), deviceId: 'bad' }, transports: ['websocket'] })
    socket.on('sync:error', (e: unknown) => errors.push(e))
    await new Promise<void>((resolve) => socket.on('connect', resolve))
  })
  afterAll(async () => {
    socket.disconnect()
    device.close()
    await server.stop()
  })

  async function expectError(event: string, payload: unknown, code: string): Promise<void> {
    const before = errors.length
    const reply = (await socket.emitWithAck(event, payload)) as { ok: boolean; error?: { code: string } }
    expect(reply).toEqual({ ok: false, error: { code, message: expect.any(String) } })
    await new Promise((r) => setTimeout(r, 20))
    expect(errors.slice(before)).toEqual([expect.objectContaining({ code, event })])
  }

  async function serverDoc(): Promise<unknown> {
    const fresh = await YjsDevice.connect(server.url, await tokenFor('alice'), 'check')
    const json = fresh.clips().toJSON()
    fresh.close()
    return json
  }

  it('sync:update must carry a binary update', async () => {
    await expectError('sync:update', { update: [1, 2, 3] }, 'INVALID_PAYLOAD')
    await expectError('sync:update', { update: Buffer.from('AAEC').toString('base64') }, 'INVALID_PAYLOAD')
    await expectError('sync:update', {}, 'INVALID_PAYLOAD')
    await expectError('sync:update', null, 'INVALID_PAYLOAD')
    await expectError('sync:update', 'hello', 'INVALID_PAYLOAD')
  })

  it('an undecodable update is INVALID_UPDATE and the document is unchanged', async () => {
    const good = new Y.Doc()
    good.getMap('clips').set('evil', new Y.Map([['content', 'x'.repeat(50)]]))
    const bytes = Y.encodeStateAsUpdate(good)
    await expectError('sync:update', { update: new Uint8Array(0) }, 'INVALID_UPDATE')
    await expectError('sync:update', { update: bytes.subarray(0, bytes.length - 20) }, 'INVALID_UPDATE')
    await expectError('sync:update', { update: new Uint8Array([255, 255, 255, 255, 255, 1]) }, 'INVALID_UPDATE')
    expect(await serverDoc()).toEqual({ c1: expect.objectContaining({ content: 'before' }) })
  })

  it('sync:request: a state vector that is not binary or not a state vector, or another device id', async () => {
    await expectError('sync:request', { deviceId: 'bad', stateVector: [0] }, 'INVALID_PAYLOAD')
    await expectError('sync:request', { deviceId: 'bad', stateVector: new Uint8Array([200]) }, 'INVALID_PAYLOAD')
    await expectError('sync:request', { stateVector: new Uint8Array([0]) }, 'INVALID_PAYLOAD')
    await expectError('sync:request', { deviceId: 'good', stateVector: new Uint8Array([0]) }, 'FORBIDDEN')
    await expectError('sync:request', { deviceId: 'bad', stateVector: new Uint8Array([0]), limit: 0 }, 'INVALID_PAYLOAD')
  })

  it('sync:error echoes the requestId the client sent', async () => {
    const before = errors.length
    await socket.emitWithAck('sync:update', { update: 'nope', requestId: 'req-42' })
    await new Promise((r) => setTimeout(r, 20))
    expect(errors.slice(before)).toEqual([
      { code: 'INVALID_PAYLOAD', message: expect.any(String), event: 'sync:update', requestId: 'req-42' },
    ])
  })

  it('an event sent without an ack still gets its sync:error, and unknown events are ignored', async () => {
    const before = errors.length
    socket.emit('sync:update', { update: 5 })
    socket.emit('no:such-event', { x: 1 })
    await socket.emitWithAck('sync:pause')
    await new Promise((r) => setTimeout(r, 20))
    expect(errors.slice(before)).toEqual([expect.objectContaining({ code: 'INVALID_PAYLOAD', event: 'sync:update' })])
    expect(socket.connected).toBe(true)
    await socket.emitWithAck('sync:resume')
  })

  it('change records: unknown fields, wrong types, prototype keys, another user: refused, nothing written', async () => {
    const clip = (data: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
      id: `chg-${Math.random()}`,
      entityType: 'clip',
      entityId: 'j1',
      data,
      version: 0,
      ...extra,
    })
    await expectError('sync:entity_created', clip({ nope: 1 }), 'INVALID_PAYLOAD')
    await expectError('sync:entity_created', clip({ content: 42 }), 'INVALID_PAYLOAD')
    await expectError('sync:entity_created', clip({ contentType: 'video' }), 'INVALID_PAYLOAD')
    await expectError('sync:entity_created', clip({ tagIds: 'a,b' }), 'INVALID_PAYLOAD')
    await expectError('sync:entity_created', clip({ _deleted: true }), 'INVALID_PAYLOAD')
    await expectError('sync:entity_created', JSON.parse('{"id":"p1","entityType":"clip","entityId":"j1","data":{"__proto__":{"x":1}}}'), 'INVALID_PAYLOAD')
    await expectError('sync:entity_created', { id: 'p2', entityType: 'setting', entityId: 's1', data: { value: { constructor: 1 } } }, 'INVALID_PAYLOAD')
    await expectError('sync:entity_created', clip({ content: 'x' }, { userId: 'mallory' }), 'FORBIDDEN')
    await expectError('sync:entity_created', clip({ content: 'x' }, { entityType: 'gadget' }), 'INVALID_PAYLOAD')
    await expectError('sync:entity_created', clip({ content: 'x' }, { operationType: 'delete' }), 'INVALID_PAYLOAD')
    await expectError('sync:entity_created', { id: 'no-entity', entityType: 'clip', data: { content: 'x' } }, 'INVALID_PAYLOAD')
    await expectError('sync:entity_updated', clip({ content: 'x' }, { entityId: 'missing' }), 'NOT_FOUND')
    await expectError('sync:conflict', { conflictId: 'nope', winningVersion: 'server' }, 'CONFLICT_NOT_FOUND')
    await expectError('sync:conflict', { conflictId: 'nope', winningVersion: 'mine' }, 'INVALID_PAYLOAD')
    expect(await serverDoc()).toEqual({ c1: expect.objectContaining({ content: 'before' }) })
  })
})

describe('hostile JSON shapes', () => {
  const t = useServer()

  it('values nested deeper than the limit are INVALID_PAYLOAD, even absurdly deep ones, and the server stays up', async () => {
    await t.start()
    const j = await t.jsonDevice('alice', 'web')
    const nest = (depth: number): unknown => {
      let v: unknown = 'leaf'
      for (let i = 0; i < depth; i++) v = [v]
      return v
    }
    // Within the limit: a setting may hold nested JSON.
    expect(await j.send('create', { entityType: 'setting', entityId: 'ok', data: { value: nest(20) } })).toMatchObject({ ok: true })
    for (const depth of [40, 1500]) {
      const reply = await j.send('create', { entityType: 'setting', entityId: `deep-${depth}`, data: { value: nest(depth) } })
      expect(reply).toEqual({ ok: false, error: { code: 'INVALID_PAYLOAD', message: expect.stringMatching(/nested deeper than 32/) } })
    }
    const check = await t.jsonDevice('alice', 'check')
    expect([...check.entities.keys()]).toEqual(['setting:ok'])
  })
})
