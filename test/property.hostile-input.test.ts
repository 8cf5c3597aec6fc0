/**
 * Property test (issue 4): thousands of random and mutated payloads against one
 * live server. Valid Yjs updates truncated at every offset, bit-flipped, spliced
 * with random bytes, plain random bytes and values of the wrong type as
 * `sync:update`; random JSON for `sync:entity_*`, `sync:request`, `sync:conflict`
 * and `sync:status`. Properties:
 * - zero crashes: every event is acknowledged and /health keeps answering;
 * - every ack is `ok` or one of the protocol §2 error codes;
 * - a refused event changes nothing: the attacker's document, read by a fresh
 *   device, equals the model built from what was acknowledged ok (plus what the
 *   server relayed back: its own fix-ups and the JSON changes it applied);
 * - another user keeps syncing edits throughout, every one acknowledged and relayed.
 * The seed is fixed (SEED); fast-check prints it and the counterexample on failure.
 */
import fc from 'fast-check'
import { io, type Socket } from 'socket.io-client'
import * as Y from 'yjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { snapshot, waitFor, YjsDevice } from './helpers/device.js'
import { NO_RATE_LIMITS, startServer, tokenFor, type TestServer } from './helpers/server.js'

const SEED = 20_261_126
import type { Reply } from '../src/types/events.js'
const CODES = [
  'UNAUTHORIZED',
  'FORBIDDEN',
  'INVALID_PAYLOAD',
  'INVALID_UPDATE',
  'PAYLOAD_TOO_LARGE',
  'QUOTA_EXCEEDED',
  // Not RATE_LIMITED: the limits are lifted here, so a rate refusal would be a limiter bug.
  'CONFLICT_NOT_FOUND',
  'NOT_FOUND',
]
const ACK_MS = 5000

/** Every ack must come, and be ok or a protocol error code (INTERNAL and UNAVAILABLE would be server faults here). */
function checkReply(event: string, reply: unknown): Reply {
  const r = reply as Reply
  if (r && typeof r === 'object' && r.ok === true) return r
  if (r && typeof r === 'object' && r.ok === false && typeof r.error?.message === 'string' && CODES.includes(r.error.code)) return r
  throw new Error(`${event}: unexpected ack ${JSON.stringify(reply)}`)
}

async function emit(socket: Socket, event: string, payload: unknown): Promise<Reply> {
  let reply: unknown
  try {
    reply = await socket.timeout(ACK_MS).emitWithAck(event, payload)
  } catch (err) {
    throw new Error(`${event}: no ack within ${ACK_MS} ms`, { cause: err })
  }
  return checkReply(event, reply)
}

// ---- generators -------------------------------------------------------------

const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.constant(null),
  fc.constant(undefined),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.string(),
  fc.constantFrom(NaN, Infinity, -0, 2 ** 53, '', '__proto__', 'constructor'),
  fc.array(fc.integer({ min: 0, max: 255 }), { maxLength: 20 }),
  fc.jsonValue({ maxDepth: 4 }),
  fc.object({ maxDepth: 3 }),
  fc.uint8Array({ maxLength: 32 }),
  fc.constant(JSON.parse('{"__proto__": {"polluted": true}}') as unknown),
  fc.integer({ min: 30, max: 60 }).map((depth) => {
    let v: unknown = 'deep'
    for (let i = 0; i < depth; i++) v = i % 2 ? [v] : { x: v }
    return v
  }),
)

const FIELDS = ['content', 'contentType', 'title', 'folderId', 'tagIds', 'pinned', 'favorite', 'source', 'createdAt', 'name', 'parentId', 'color', 'order', 'description', 'clipIds', 'body', 'value', 'id', '_deleted', 'deletedAt', 'prototype', 'bogus']
const fieldValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 20 }) },
  fc.boolean(),
  fc.nat(),
  fc.constant(null),
  fc.constantFrom('text', 'html', 'image', 'file', 'link'),
  fc.array(fc.string({ maxLength: 8 }), { maxLength: 4 }),
  junk,
)
/** A change a real JSON client could send (most are applied), to mix accepted changes in. */
const plausibleChange = (deviceId: string): fc.Arbitrary<unknown> =>
  fc.record({
    id: fc.string({ minLength: 1, maxLength: 12 }),
    deviceId: fc.constant(deviceId),
    entityType: fc.constant('clip'),
    entityId: fc.constantFrom('e1', 'e2', 'e3', 'k1'),
    data: fc.record(
      { content: fc.string({ maxLength: 20 }), title: fc.string({ maxLength: 20 }), pinned: fc.boolean(), contentType: fc.constantFrom('text', 'link') },
      { requiredKeys: [] },
    ),
    version: fc.nat({ max: 4 }),
  })
const entityChange = (deviceId: string): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 2, arbitrary: plausibleChange(deviceId) },
    { weight: 4, arbitrary: fc.record(
      {
        id: fc.oneof(fc.string({ minLength: 1, maxLength: 12 }), fc.constantFrom('dup-1', 'dup-2'), junk),
        userId: fc.constantFrom(undefined, 'mallory', 'bob', 42),
        deviceId: fc.constantFrom(deviceId, 'other', undefined),
        entityType: fc.oneof(fc.constantFrom('clip', 'folder', 'set', 'tag', 'template', 'setting'), junk),
        entityId: fc.oneof(fc.constantFrom('e1', 'e2', 'e3', 'c1'), fc.string({ maxLength: 140 }), junk),
        data: fc.oneof({ weight: 4, arbitrary: fc.dictionary(fc.constantFrom(...FIELDS), fieldValue, { maxKeys: 4 }) }, junk),
        timestamp: fc.oneof(fc.nat(), junk),
        version: fc.oneof(fc.nat({ max: 5 }), junk),
        requestId: fc.oneof(fc.string({ minLength: 1, maxLength: 10 }), junk),
      },
      { requiredKeys: [] },
    ) },
    junk,
  )

const syncRequest = (deviceId: string): fc.Arbitrary<unknown> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.record(
      {
        deviceId: fc.oneof(fc.constant(deviceId), fc.constantFrom('other', ''), junk),
        stateVector: fc.oneof(fc.uint8Array({ maxLength: 24 }), junk),
        lastSyncTimestamp: fc.oneof(fc.nat(), junk),
        entities: fc.oneof(fc.array(fc.constantFrom('clip', 'folder', 'nope'), { maxLength: 4 }), junk),
        limit: fc.oneof(fc.integer({ min: -1, max: 6000 }), junk),
        includeDeleted: fc.oneof(fc.boolean(), junk),
        requestId: fc.oneof(fc.string({ maxLength: 10 }), junk),
      },
      { requiredKeys: [] },
    ) },
    junk,
  )

const conflict: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 2, arbitrary: fc.record(
    {
      conflictId: fc.oneof(fc.string({ maxLength: 140 }), junk),
      winningVersion: fc.oneof(fc.constantFrom('server', 'client', 'merged'), junk),
      mergedData: fc.oneof(fc.dictionary(fc.constantFrom(...FIELDS), fieldValue, { maxKeys: 3 }), junk),
      requestId: fc.oneof(fc.string({ maxLength: 10 }), junk),
    },
    { requiredKeys: [] },
  ) },
  junk,
)

const status = (deviceId: string): fc.Arbitrary<unknown> =>
  fc.oneof(fc.constant(deviceId), fc.constant({ deviceId }), fc.record({ deviceId: junk, requestId: junk }, { requiredKeys: [] }), junk)

/** An edit a client could make, applied to a copy of the model; yields one valid update. */
interface Edit {
  clientId: number
  kind: 'addClip' | 'setField' | 'text' | 'softDelete' | 'replaceMap' | 'rootText'
  key: string
  value: string
}
const edit: fc.Arbitrary<Edit> = fc.record({
  clientId: fc.integer({ min: 1, max: 2 ** 31 - 1 }),
  kind: fc.constantFrom('addClip', 'setField', 'text', 'softDelete', 'replaceMap', 'rootText'),
  key: fc.constantFrom('k1', 'k2', 'k3', 'k4'),
  value: fc.string({ maxLength: 30 }),
})

function validUpdate(model: Y.Doc, e: Edit): Uint8Array {
  const doc = new Y.Doc()
  // A client id the model does not hold yet (Yjs would otherwise pick a random one: the run would not replay).
  const known = Y.decodeStateVector(Y.encodeStateVector(model))
  let clientId = e.clientId
  while (known.has(clientId)) clientId = (clientId * 7 + 1) % 2 ** 31
  doc.clientID = clientId
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(model))
  const before = Y.encodeStateVector(doc)
  doc.transact(() => {
    const clips = doc.getMap<unknown>('clips')
    // An accepted hostile update may have left something other than an entity map under a key.
    const found = clips.get(e.key)
    const existing = found instanceof Y.Map ? (found as Y.Map<unknown>) : undefined
    switch (e.kind) {
      case 'addClip':
      case 'replaceMap':
        if (existing && e.kind === 'addClip') existing.set('title', e.value)
        else clips.set(e.key, new Y.Map<unknown>([['content', e.value], ['contentType', 'text'], ['createdAt', 1_700_000_000_000]]))
        break
      case 'setField':
        if (existing) existing.set('content', e.value)
        else clips.set(e.key, e.value) // a bare value where an entity map belongs
        break
      case 'text': {
        const templates = doc.getMap<unknown>('templates')
        const found = templates.get(e.key)
        let t = found instanceof Y.Map ? (found as Y.Map<unknown>) : undefined
        if (!t) templates.set(e.key, (t = new Y.Map<unknown>([['name', 'tpl'], ['body', new Y.Text()]])))
        const body = t.get('body')
        if (body instanceof Y.Text) body.insert(Math.min(body.length, e.value.length), e.value || 'x')
        else t.set('name', e.value)
        break
      }
      case 'softDelete':
        if (existing) {
          existing.set('_deleted', true)
          existing.set('deletedAt', 1_700_000_000_001)
        } else clips.delete(e.key)
        break
      case 'rootText':
        doc.getText('notes').insert(0, e.value || 'y') // a root type outside the schema
        break
    }
  })
  const update = Y.encodeStateAsUpdate(doc, before)
  doc.destroy()
  return update
}

/** How a valid update is damaged before it is sent. */
const mutation: fc.Arbitrary<(u: Uint8Array) => unknown> = fc.oneof(
  fc.constant((u: Uint8Array) => u),
  fc.nat().map((n) => (u: Uint8Array) => u.subarray(0, n % (u.length + 1))),
  fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })).map(([n, bit]) => (u: Uint8Array) => {
    const c = Uint8Array.from(u)
    if (c.length > 0) c[n % c.length]! ^= 1 << bit
    return c
  }),
  fc.tuple(fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 8 })).map(([n, bytes]) => (u: Uint8Array) => {
    const at = n % (u.length + 1)
    return Uint8Array.from([...u.subarray(0, at), ...bytes, ...u.subarray(at)])
  }),
  fc.tuple(fc.nat(), fc.nat({ max: 8 })).map(([n, len]) => (u: Uint8Array) => {
    const at = n % (u.length + 1)
    return Uint8Array.from([...u.subarray(0, at), ...u.subarray(at + len)])
  }),
  fc.uint8Array({ maxLength: 64 }).map((bytes) => () => bytes),
  junk.map((value) => () => value), // the update field of the wrong type
  junk.map((value) => () => ({ [Symbol.for('whole')]: value })), // the whole payload of the wrong type
)

type Action =
  | { event: 'sync:update'; edit: Edit; mutate: (u: Uint8Array) => unknown }
  | { event: 'sync:entity_created' | 'sync:entity_updated' | 'sync:entity_deleted' | 'sync:request' | 'sync:conflict' | 'sync:status'; payload: unknown }

// ---- the test -----------------------------------------------------------------

describe('property: hostile input never crashes the server nor changes what it refuses (protocol §§2, 3, 5, 7)', () => {
  let server: TestServer
  /** The attacker's Yjs socket: live, so the model also receives what the server applies on its own. */
  let yjsSocket: Socket
  /** The attacker's JSON socket. */
  let jsonSocket: Socket
  const model = new Y.Doc()
  let bobWriter: YjsDevice
  let bobReader: YjsDevice

  const rawSocket = async (deviceId: string): Promise<Socket> => {
    const socket = io(server.url, { auth: { token: await tokenFor('mallory', 'pro'), deviceId }, transports: ['websocket'], reconnection: false })
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('connect_error', reject)
    })
    return socket
  }

  beforeAll(async () => {
    // Thousands of refused events from two sockets at full speed: the rate limits and strikes would
    // end the run (they have their own test); this one is about what each event does.
    server = await startServer(undefined, NO_RATE_LIMITS)
    yjsSocket = await rawSocket('attacker-yjs')
    yjsSocket.on('sync:update', (m: { update: Uint8Array }) => Y.applyUpdate(model, m.update))
    const response = new Promise<{ update: Uint8Array }>((resolve) => yjsSocket.once('sync:response', resolve))
    expect((await emit(yjsSocket, 'sync:request', { deviceId: 'attacker-yjs', stateVector: Y.encodeStateVector(model) })).ok).toBe(true)
    Y.applyUpdate(model, (await response).update)
    jsonSocket = await rawSocket('attacker-json')
    bobWriter = await YjsDevice.connect(server.url, await tokenFor('bob', 'pro'), 'bob-phone')
    bobReader = await YjsDevice.connect(server.url, await tokenFor('bob', 'pro'), 'bob-laptop')
  })
  afterAll(async () => {
    yjsSocket?.disconnect()
    jsonSocket?.disconnect()
    bobWriter?.close()
    bobReader?.close()
    model.destroy()
    await server?.stop()
  })

  /** Sends an update as the attacker; an ok one goes into the model. */
  async function sendUpdate(payload: unknown, bytes: unknown): Promise<Reply> {
    const reply = await emit(yjsSocket, 'sync:update', payload)
    if (reply.ok) Y.applyUpdate(model, bytes as Uint8Array)
    return reply
  }

  /** The attacker's document as the server has it, read by a fresh device, against the model. */
  async function expectServerEqualsModel(): Promise<void> {
    await emit(yjsSocket, 'sync:status', 'attacker-yjs') // a round trip: every relay before it has arrived
    const fresh = await YjsDevice.connect(server.url, await tokenFor('mallory', 'pro'), 'attacker-check')
    try {
      expect(snapshot(fresh.doc)).toEqual(snapshot(model))
      expect(Y.decodeStateVector(Y.encodeStateVector(fresh.doc))).toEqual(Y.decodeStateVector(Y.encodeStateVector(model)))
    } finally {
      fresh.close()
    }
  }

  async function healthy(): Promise<void> {
    const res = await fetch(`${server.url}/health`)
    expect(res.status).toBe(200)
  }

  it('valid updates truncated at every offset: ok whole or refused whole', async () => {
    const counts: Record<string, number> = {}
    for (const e of [
      { clientId: 11, kind: 'addClip', key: 'k1', value: 'seed clip' },
      { clientId: 12, kind: 'text', key: 'k2', value: 'template body' },
    ] as Edit[]) {
      const update = validUpdate(model, e)
      for (let n = 0; n < update.length; n++) {
        const cut = update.subarray(0, n)
        const reply = await sendUpdate({ update: cut }, cut)
        const key = reply.ok ? 'ok' : reply.error.code
        counts[key] = (counts[key] ?? 0) + 1
      }
      expect((await sendUpdate({ update }, update)).ok).toBe(true)
      await expectServerEqualsModel()
    }
    console.log(`[property] truncations: ${JSON.stringify(counts)}`)
    await healthy()
  })

  it('random and mutated events: zero crashes, acks ok or a protocol code, refused ones change nothing, bob unaffected', async () => {
    const counts: Record<string, number> = {}
    let events = 0
    // Bob keeps syncing edits throughout.
    let bobRunning = true
    let bobEdits = 0
    const bob = (async () => {
      while (bobRunning) {
        bobWriter.addClip(`b${bobEdits}`, `edit ${bobEdits}`)
        bobEdits++
        await bobWriter.flushed()
        await new Promise((r) => setTimeout(r, 10))
      }
    })()

    const action: fc.Arbitrary<Action> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ event: fc.constant('sync:update' as const), edit, mutate: mutation }) },
      ...(['sync:entity_created', 'sync:entity_updated', 'sync:entity_deleted'] as const).map((event) => ({
        weight: 2,
        arbitrary: fc.record({ event: fc.constant(event), payload: entityChange('attacker-json') }),
      })),
      { weight: 1, arbitrary: fc.record({ event: fc.constant('sync:request' as const), payload: syncRequest('attacker-json') }) },
      { weight: 1, arbitrary: fc.record({ event: fc.constant('sync:conflict' as const), payload: conflict }) },
      { weight: 1, arbitrary: fc.record({ event: fc.constant('sync:status' as const), payload: status('attacker-json') }) },
    )

    try {
      await fc.assert(
        fc.asyncProperty(fc.array(action, { minLength: 10, maxLength: 30 }), async (actions) => {
          const before = bobEdits
          await Promise.all(
            actions.map(async (a) => {
              let reply: Reply
              if (a.event === 'sync:update') {
                const bytes = a.mutate(validUpdate(model, a.edit))
                const whole = bytes && typeof bytes === 'object' && Symbol.for('whole') in bytes
                const payload = whole ? (bytes as Record<symbol, unknown>)[Symbol.for('whole')] : { update: bytes }
                reply = await sendUpdate(payload, bytes)
              } else {
                reply = await emit(jsonSocket, a.event, a.payload)
              }
              const key = `${a.event} ${reply.ok ? 'ok' : reply.error.code}`
              counts[key] = (counts[key] ?? 0) + 1
              events++
            }),
          )
          await expectServerEqualsModel()
          await healthy()
          // Bob's edits keep flowing while the attacker runs.
          await waitFor(() => bobEdits > before, "bob's next edit", 5000)
        }),
        { seed: SEED, numRuns: 150, endOnFailure: true },
      )
    } finally {
      bobRunning = false
      await bob
      console.log(`[property] ${events} hostile events, bob made ${bobEdits} edits: ${JSON.stringify(counts, null, 1)}`)
    }

    // Every one of bob's edits was acknowledged (flushed throws otherwise), relayed, and stored.
    await waitFor(() => bobReader.clips().size === bobEdits, "bob's edits on his laptop")
    const fresh = await YjsDevice.connect(server.url, await tokenFor('bob', 'pro'), 'bob-check')
    expect(fresh.clips().size).toBe(bobEdits)
    expect(snapshot(fresh.doc)).toEqual(snapshot(bobWriter.doc))
    fresh.close()
    expect(events).toBeGreaterThanOrEqual(2000)
  })
})
