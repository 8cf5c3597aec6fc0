import { monitorEventLoopDelay } from 'node:perf_hooks'
import { io, type Socket } from 'socket.io-client'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { beforeEach, describe, expect, it } from 'vitest'
import { YjsDevice, type YjsSyncResponse } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { tokenFor } from './helpers/server.js'

type Reply = { ok: true; serverTimestamp: number } | { ok: false; error: { code: string; message: string } }

const bytes = (write: (e: encoding.Encoder) => void): Uint8Array => {
  const e = encoding.createEncoder()
  write(e)
  return encoding.toUint8Array(e)
}
const uints = (...n: number[]) => bytes((e) => n.forEach((x) => encoding.writeVarUint(e, x)))

/** V1 updates that declare far more than their bytes hold (yjs issue 687 and relatives). */
const hostile: Record<string, Uint8Array> = {
  // 1 client, 2^31 structs of client 1 from clock 0, then a few GC structs.
  'millions of structs': uints(1, 2 ** 31, 1, 0, 0, 1, 0, 1, 0, 1, 0, 1),
  // 2^40 clients, each with no structs.
  'a trillion clients': uints(2 ** 40, 0, 1, 0, 0, 2, 0, 0, 3, 0),
  // No structs; a delete set of one client with 2^45 ranges.
  'a huge delete set': uints(0, 1, 5, 2 ** 45, 0, 1, 2, 1),
  // One item with a string content whose length reaches past the update's end.
  'a string longer than the update': bytes((e) => {
    ;[1, 1, 7, 0].forEach((n) => encoding.writeVarUint(e, n))
    encoding.writeUint8(e, 4) // string content, no origins
    encoding.writeVarUint(e, 1) // parent by name
    encoding.writeVarString(e, 'clips')
    encoding.writeVarUint(e, 1_000_000)
    encoding.writeVarString(e, 'short')
  }),
  // An `Any` content declaring 2^32 values.
  'an Any content of 2^32 values': bytes((e) => {
    ;[1, 1, 7, 0, 8, 1].forEach((n) => encoding.writeVarUint(e, n))
    encoding.writeVarString(e, 'clips')
    encoding.writeVarUint(e, 2 ** 32)
    encoding.writeAny(e, 1)
  }),
}

describe('hostile Yjs updates are refused before anything is applied (protocol §§2, 4, 7)', () => {
  const fixture = useServer()
  let good: YjsDevice
  let watcher: YjsDevice
  let raw: Socket

  beforeEach(async () => {
    await fixture.start()
    good = await fixture.device('alice', 'good')
    good.addClip('c1', 'before')
    await good.flushed()
    watcher = await fixture.device('alice', 'watcher')
    raw = fixture.track(io(fixture.server.url, { auth: { token: await tokenFor('alice'), deviceId: 'raw' }, transports: ['websocket'] }))
    await new Promise<void>((resolve) => raw.on('connect', resolve))
  })

  const send = async (update: Uint8Array): Promise<Reply> => (await raw.emitWithAck('sync:update', { update })) as Reply

  async function expectRefused(update: Uint8Array, message: RegExp): Promise<void> {
    const relayed = watcher.received.length
    const reply = await send(update)
    expect(reply).toEqual({ ok: false, error: { code: 'INVALID_UPDATE', message: expect.stringMatching(message) } })
    await new Promise((r) => setTimeout(r, 20))
    expect(watcher.received.length).toBe(relayed)
  }

  /** What a fresh device gets from the server: the stored document. */
  async function serverDoc(): Promise<unknown> {
    const fresh = await YjsDevice.connect(fixture.server.url, await tokenFor('alice'), `check-${Math.random()}`)
    const json = { clips: fresh.clips().toJSON() }
    fresh.close()
    return json
  }
  const untouched = { clips: { c1: expect.objectContaining({ content: 'before' }) } }

  /** A state-vector sync by hand on the raw socket: returns the server's reply, to which the caller answers. */
  async function rawSync(doc: Y.Doc): Promise<Reply> {
    const response = new Promise<YjsSyncResponse>((resolve) => raw.once('sync:response', resolve))
    await raw.emitWithAck('sync:request', { deviceId: 'raw', stateVector: Y.encodeStateVector(doc) })
    const r = await response
    Y.applyUpdate(doc, r.update)
    return send(Y.encodeStateAsUpdate(doc, r.stateVector))
  }

  it('an update declaring more structs, clients or values than its bytes hold is refused by the pre-check', async () => {
    for (const update of Object.values(hostile)) await expectRefused(update, /not a well-formed Yjs V1 update/)
    expect(await serverDoc()).toEqual(untouched)
  })

  it('hostile updates over the wire leave the document untouched (the pre-check cost against Yjs decoding is logged)', async () => {
    const { decodeClientUpdate } = await import('../src/services/update-validator.js')
    const time = (run: () => void): number => {
      const start = performance.now()
      for (let i = 0; i < 200; i++) {
        try {
          run()
        } catch {
          // refused: expected
        }
      }
      return (performance.now() - start) / 200
    }
    const figures: string[] = []
    for (const [name, update] of Object.entries(hostile)) {
      const before = time(() => {
        Y.decodeUpdate(update)
        Y.applyUpdate(new Y.Doc(), update)
      })
      const after = time(() => decodeClientUpdate(update))
      figures.push(`${name} (${update.byteLength} B): ${before.toFixed(3)} ms -> ${after.toFixed(3)} ms`)
    }
    // Over the wire: the longest event-loop block seen while the server refuses 15 of each (75 refusals:
    // under the 100 strikes after which the server disconnects a socket, rate-limits.test.ts).
    const delay = monitorEventLoopDelay({ resolution: 1 })
    delay.enable()
    const replies: Reply[] = []
    for (let i = 0; i < 15; i++) replies.push(...(await Promise.all(Object.values(hostile).map(send))))
    delay.disable()
    // Refused by the pre-check, every one (not by a rate limit, which would leave the document as untouched).
    expect(replies.map((r) => (r.ok ? 'ok' : r.error.code))).toEqual(Array(replies.length).fill('INVALID_UPDATE'))
    figures.push(`server, ${15 * Object.keys(hostile).length} hostile updates: max event-loop delay ${(delay.max / 1e6).toFixed(1)} ms`)
    console.log(`[hostile updates] per update, Yjs decode+apply -> pre-check:\n  ${figures.join('\n  ')}`)
    expect(await serverDoc()).toEqual(untouched)
  })

  it('a decodable shape that Yjs throws on (invalid JSON content) is INVALID_UPDATE', async () => {
    const update = bytes((e) => {
      ;[1, 1, 7, 0, 2 | 32, 1].forEach((n) => encoding.writeVarUint(e, n))
      encoding.writeVarString(e, 'clips')
      encoding.writeVarString(e, 'evil')
      encoding.writeVarUint(e, 1)
      encoding.writeVarString(e, '{not json')
      encoding.writeVarUint(e, 0)
    })
    await expectRefused(update, /not a decodable/)
    expect(await serverDoc()).toEqual(untouched)
  })

  it('a struct referring to a later clock of its own client is INVALID_UPDATE', async () => {
    const update = bytes((e) => {
      ;[1, 1, 7, 0].forEach((n) => encoding.writeVarUint(e, n))
      encoding.writeUint8(e, 8 | 128) // Any content, origin
      ;[7, 5, 1].forEach((n) => encoding.writeVarUint(e, n)) // origin 7:5, one value
      encoding.writeAny(e, 'x')
      encoding.writeVarUint(e, 0)
    })
    await expectRefused(update, /later clock of its own client/)
    expect(await serverDoc()).toEqual(untouched)
  })

  it('an update starting above the clock the server has for its client: refused, then a re-sync stores it all', async () => {
    const doc = new Y.Doc()
    doc.getMap('clips').set('n1', new Y.Map([['content', 'one']]))
    const sv = Y.encodeStateVector(doc)
    doc.getMap('clips').set('n2', new Y.Map([['content', 'two']]))
    await expectRefused(Y.encodeStateAsUpdate(doc, sv), /missing dependencies: send sync:request with your state vector/)
    expect(await serverDoc()).toEqual(untouched)

    expect(await rawSync(doc)).toEqual({ ok: true, serverTimestamp: expect.any(Number) })
    const expected = { clips: { c1: expect.objectContaining({ content: 'before' }), n1: { content: 'one' }, n2: { content: 'two' } } }
    expect(await serverDoc()).toEqual(expected)
    await new Promise((r) => setTimeout(r, 20))
    expect({ clips: watcher.clips().toJSON() }).toEqual(expected)
  })

  it('an update whose parent the server lacks and the update does not bring: refused, then a re-sync stores it all', async () => {
    const a = new Y.Doc()
    a.getMap('clips').set('n1', new Y.Map([['content', 'one']]))
    const b = new Y.Doc()
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    const edits: Uint8Array[] = []
    b.on('update', (u: Uint8Array) => edits.push(u))
    ;(b.getMap('clips').get('n1') as Y.Map<unknown>).set('content', 'edited on b')
    expect(edits).toHaveLength(1)
    await expectRefused(edits[0]!, /missing dependencies: send sync:request with your state vector/)
    expect(await serverDoc()).toEqual(untouched)

    expect(await rawSync(b)).toEqual({ ok: true, serverTimestamp: expect.any(Number) })
    expect(await serverDoc()).toEqual({ clips: { c1: expect.objectContaining({ content: 'before' }), n1: { content: 'edited on b' } } })
  })

  it('a delete of items the server lacks is refused too (never kept pending), and a re-sync stores the deletion', async () => {
    const a = new Y.Doc()
    a.getMap('clips').set('n1', new Y.Map<unknown>([['content', 'one'], ['note', 'drop me']]))
    const b = new Y.Doc()
    Y.applyUpdate(b, Y.encodeStateAsUpdate(a))
    const edits: Uint8Array[] = []
    b.on('update', (u: Uint8Array) => edits.push(u))
    ;(b.getMap('clips').get('n1') as Y.Map<unknown>).delete('note')
    expect(edits).toHaveLength(1)
    expect(Y.decodeUpdate(edits[0]!).structs).toHaveLength(0) // a pure delete set
    await expectRefused(edits[0]!, /missing dependencies: send sync:request with your state vector/)
    expect(await serverDoc()).toEqual(untouched)

    expect(await rawSync(b)).toEqual({ ok: true, serverTimestamp: expect.any(Number) })
    expect(await serverDoc()).toEqual({ clips: { c1: expect.objectContaining({ content: 'before' }), n1: { content: 'one' } } })
  })

  it('refused updates leave nothing on disk: after a restart the document is as it was', async () => {
    const doc = new Y.Doc()
    doc.getMap('clips').set('n1', new Y.Map([['content', 'one']]))
    const sv = Y.encodeStateVector(doc)
    doc.getMap('clips').set('n2', new Y.Map([['content', 'two']]))
    await expectRefused(Y.encodeStateAsUpdate(doc, sv), /missing dependencies/)
    for (const update of Object.values(hostile)) await expectRefused(update, /well-formed/)
    raw.disconnect()
    good.close()
    watcher.close()
    await fixture.start(fixture.server.config.dataDir)
    expect(await serverDoc()).toEqual(untouched)
  })
})

describe('entities are Y.Maps', () => {
  const t = useServer()

  it('an update that puts a plain value or another type under an entity id is INVALID_UPDATE and changes nothing', async () => {
    await t.start()
    const a = await t.device('alice', 'phone')
    for (const value of ['just a string', new Y.Text('text'), new Y.Array<number>()]) {
      const doc = new Y.Doc()
      doc.getMap<unknown>('clips').set('not-a-map', value)
      const reply = (await a.socket.emitWithAck('sync:update', { update: Y.encodeStateAsUpdate(doc) })) as {
        ok: boolean
        error?: { code: string; message: string }
      }
      expect(reply).toEqual({ ok: false, error: { code: 'INVALID_UPDATE', message: expect.stringMatching(/must be a Y.Map/) } })
    }
    const fresh = await t.device('alice', 'check')
    expect(fresh.clips().size).toBe(0)
  })
})
