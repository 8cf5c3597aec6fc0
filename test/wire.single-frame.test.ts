/**
 * Binary packets as single WebSocket messages (client/src/wire.ts, protocol
 * §1 in docs/protocol.md; issue 13): a device that asks for them with
 * `auth.wire: 'single-frame'` sends `sync:update` as one message and gets
 * relays as one, while a plain socket.io-client device beside it keeps
 * Socket.IO's default form. The codec delivers a packet whole or not at all.
 */
import { Decoder, Encoder, packParts } from '@superclip/sync-client/wire'
import * as encoding from 'lib0/encoding'
import type { Packet } from 'socket.io-parser'
import { Decoder as DefaultDecoder, Encoder as DefaultEncoder } from 'socket.io-parser'
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { snapshot, waitFor, YjsDevice } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { tokenFor } from './helpers/server.js'

/** Every packet `chunks` decode to, in order. */
function decodeAll(chunks: readonly unknown[]): Packet[] {
  const decoder = new Decoder()
  const packets: Packet[] = []
  decoder.on('decoded', (p) => packets.push(p))
  for (const chunk of chunks) decoder.add(chunk)
  return packets
}

type MessageKind = 'text' | 'binary'

/** Kinds of the messages (engine.io `message` packets) a device's socket receives (`packet`) or sends (`packetCreate`), from now on. */
function messages(device: YjsDevice, direction: 'packet' | 'packetCreate'): MessageKind[] {
  const kinds: MessageKind[] = []
  const watch = () =>
    device.socket.io.engine.on(direction, (p: { type: string; data?: unknown }) => {
      if (p.type === 'message') kinds.push(typeof p.data === 'string' ? 'text' : 'binary')
    })
  // A device not yet connected has no engine: watch it once it opens, before any packet of the socket.
  if (device.socket.io.engine) watch()
  else device.socket.io.once('open', watch)
  return kinds
}

const receivedMessages = (device: YjsDevice) => messages(device, 'packet')
const sentMessages = (device: YjsDevice) => messages(device, 'packetCreate')

describe('the single-message codec', () => {
  const view = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]).subarray(2, 5)
  const packet: Packet = { type: 2, nsp: '/', id: 7, data: ['sync:update', { update: view, stateVector: new Uint8Array([9]).buffer, deviceId: 'd' }] }

  it('packs a packet with binary into one message that decodes to the same packet, a view as its own bytes', () => {
    const encoded = new Encoder().encode(packet)
    expect(encoded).toHaveLength(1)
    expect(encoded[0]).toBeInstanceOf(Uint8Array)
    const [decoded] = decodeAll(encoded)
    expect(decoded?.id).toBe(7)
    const [event, payload] = decoded?.data as [string, { update: Uint8Array; stateVector: Uint8Array; deviceId: string }]
    expect(event).toBe('sync:update')
    expect([...payload.update]).toEqual([2, 3, 4])
    expect([...payload.stateVector]).toEqual([9])
    expect(payload.deviceId).toBe('d')
  })

  it('reads the default form too, and writes packets without binary as the default text', () => {
    const defaultForm = new DefaultEncoder().encode(packet) as unknown[]
    expect(defaultForm.length).toBe(3)
    const [decoded] = decodeAll(defaultForm)
    expect([...(decoded?.data as [string, { update: Uint8Array }])[1].update]).toEqual([2, 3, 4])
    const plain: Packet = { type: 3, nsp: '/', id: 1, data: [{ ok: true }] }
    expect(new Encoder().encode(plain)).toEqual(new DefaultEncoder().encode(plain))
    // And the default decoder reads what the codec writes without binary.
    const decoder = new DefaultDecoder()
    const seen: Packet[] = []
    decoder.on('decoded', (p: Packet) => seen.push(p))
    decoder.add(new Encoder().encode(plain)[0])
    expect(seen).toEqual([plain])
  })

  it("lays a message out as lib0's encoder does: format byte, var-string header, var-bytes attachments", () => {
    const lib0 = (header: string, attachments: Uint8Array[]) => {
      const e = encoding.createEncoder()
      encoding.writeUint8(e, 1)
      encoding.writeVarString(e, header)
      for (const a of attachments) encoding.writeVarUint8Array(e, a)
      return encoding.toUint8Array(e)
    }
    const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => i % 251)
    // Headers of one-byte and two-byte lengths, non-ASCII (2, 3 and 4 UTF-8 bytes); attachments across varint sizes.
    const cases: [string, Uint8Array[]][] = [
      ['51-["sync:update",{"update":{"_placeholder":true,"num":0}}]', [bytes(0)]],
      ['52-["e",{"a":{"_placeholder":true,"num":0},"b":{"_placeholder":true,"num":1}}]', [bytes(127), bytes(128)]],
      [`51-["e",{"text":"${'é€😀'.repeat(20)}"}]`, [bytes(16_384)]],
      [`51-["e","${'x'.repeat(300)}"]`, [bytes(70_000)]],
    ]
    for (const [header, attachments] of cases) expect(packParts([header, ...attachments])).toEqual(lib0(header, attachments))
  })

  it('refuses a message whose attachments do not match its header, or of an unknown format, and decodes nothing', () => {
    const [message] = new Encoder().encode(packet) as [Uint8Array]
    const truncated = message.subarray(0, message.length - 2)
    const unknownFormat = Uint8Array.from(message, (b, i) => (i === 0 ? 2 : b))
    const extra = new Uint8Array([...message, 1, 42])
    // A header announcing more attachments than Socket.IO allows (10), and one announcing 1 followed by
    // a million empty ones: refused before a view is made for each.
    const header = (h: string) => [1, h.length, ...new TextEncoder().encode(h)]
    const tooMany = new Uint8Array([...header('511-["sync:update",{}]'), ...Array<number>(11).fill(0)])
    const flood = new Uint8Array([...header('51-["sync:update",{"update":{"_placeholder":true,"num":0}}]'), ...new Uint8Array(1_000_000)])
    for (const bad of [truncated, unknownFormat, extra, new Uint8Array([1]), tooMany, flood]) {
      const packets: Packet[] = []
      const decoder = new Decoder()
      decoder.on('decoded', (p) => packets.push(p))
      expect(() => decoder.add(bad)).toThrow()
      expect(packets).toEqual([])
      // The decoder is not left half-way: the next good message decodes.
      decoder.add(message)
      expect(packets).toHaveLength(1)
    }
  })
})

describe('single-message devices beside plain socket.io-client devices', () => {
  const t = useServer()

  it('an update goes out as one message, reaches a single-message device as one and a plain device in the default form', async () => {
    await t.start()
    const phone = await t.device('alice', 'phone', { singleFrame: true })
    const tablet = await t.device('alice', 'tablet', { singleFrame: true })
    const laptop = await t.device('alice', 'laptop')
    // The acks of what each device sent back after its sync are in.
    await Promise.all([phone, tablet, laptop].map((d) => d.flushed()))
    const phoneSent = sentMessages(phone)
    const tabletGot = receivedMessages(tablet)
    const laptopGot = receivedMessages(laptop)

    const reply = phone.write(() => phone.clips().set('c1', new Y.Map([['content', 'hello']])))
    expect(await reply).toMatchObject({ ok: true })
    await waitFor(() => tablet.clips().has('c1') && laptop.clips().has('c1'), 'the clip on the tablet and the laptop')
    expect(phoneSent).toEqual(['binary'])
    expect(tabletGot).toEqual(['binary'])
    expect(laptopGot).toEqual(['text', 'binary'])

    // And the other way: a plain device's update reaches the single-message devices.
    const fromLaptop = laptop.write(() => laptop.clips().set('c2', new Y.Map([['content', 'from the laptop']])))
    expect(await fromLaptop).toMatchObject({ ok: true })
    await waitFor(() => phone.clips().has('c2') && tablet.clips().has('c2'), 'the laptop clip on the phone and the tablet')
    expect(tabletGot.slice(1)).toEqual(['binary'])
    expect(snapshot(phone.doc)).toEqual(snapshot(laptop.doc))
    expect(snapshot(tablet.doc)).toEqual(snapshot(laptop.doc))
    expect(phone.received.map((r) => r.deviceId)).toEqual(['laptop'])
  })

  it('a single-message device syncs a document written by others: its sync request and the response are one message each', async () => {
    await t.start()
    const writer = await t.device('alice', 'writer')
    writer.addClip('a', 'first')
    writer.addClip('b', 'second')
    await writer.flushed()
    const reader = t.track(new YjsDevice(t.server.url, await tokenFor('alice'), 'reader', { singleFrame: true }))
    const sent = sentMessages(reader)
    const got = receivedMessages(reader)
    reader.socket.connect()
    await reader.synced()
    // The namespace's connect, then sync:request; back: connected, sync:start, sync:response, sync:complete.
    expect(sent.slice(0, 2)).toEqual(['text', 'binary'])
    expect(got.slice(0, 4)).toEqual(['text', 'text', 'binary', 'text'])
    expect(reader.clips().get('b')?.get('content')).toBe('second')
    expect(snapshot(reader.doc)).toEqual(snapshot(writer.doc))
  })

  it('a malformed single message closes that connection only; the document and the server are unharmed', async () => {
    await t.start()
    const phone = await t.device('alice', 'phone', { singleFrame: true })
    phone.addClip('kept', 'acknowledged before')
    await phone.flushed()
    const closed = new Promise<string>((resolve) => phone.socket.once('disconnect', (reason) => resolve(reason)))
    // Announces one attachment and carries none.
    const header = '451-["sync:update",{"update":{"_placeholder":true,"num":0}}]'
    phone.socket.io.engine.write(new Uint8Array([1, header.length, ...new TextEncoder().encode(header)]))
    expect(await closed).toBe('transport close')
    const other = await t.device('alice', 'laptop', { singleFrame: true })
    expect(other.clips().get('kept')?.get('content')).toBe('acknowledged before')
    expect([...other.clips().keys()]).toEqual(['kept'])
  })
})
