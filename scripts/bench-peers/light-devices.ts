/**
 * Light devices for the fan-out workloads (1 and 2) of `npm run bench:peers`:
 * each speaks its server's wire protocol with as little client work as the
 * protocol allows, so that the load processes stay well under their core and
 * the figures are the server's (issue 13, item 1).
 *
 * - The clips' updates are made before the round starts, in a scratch Y.Doc
 *   with the same `putClips` as the full devices (one update of one new clip
 *   each), and during the round only sent, on `ws`: y-websocket's and
 *   Hocuspocus's sync messages built with lib0, and ours and the floor's
 *   `sync:update` framed as Socket.IO frames it (SocketIoLight).
 * - What arrives is not applied to a doc. A device counts the clips it holds
 *   from the clocks in each update: every clip is a Y.Map with three
 *   entries, so the same number of clock ticks (checked on the prepared
 *   updates), and a device of another client's clock `c` holds that client's
 *   first c / ticks clips. Ours merges relays: their clocks are read with
 *   `Y.parseUpdateMeta`; the peers relay each update as it came: the first
 *   bytes give its client and clock (ClockCounter.receivedClip). Its own
 *   clips count as sent.
 *
 * They answer the initial sync as the providers do (an empty doc: every round
 * is a fresh user). Workloads 3 to 7 keep the full clients of clients.ts.
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import { packParts, WIRE_SINGLE_FRAME } from '@superclip/sync-client/wire'
import * as Y from 'yjs'
import { putClips } from '../bench/device.js'
import { tokenFor } from '../bench/scenarios.js'
import { ArrivalCounter, loadPeerModules, OUR_WINDOW, SINGLE_FRAME, type Device } from './clients.js'
import { nodeUrl, type TargetServer } from './servers.js'
import { connectEach } from './workloads.js'

/** What the fan-out load needs of a device. */
export type LoadDevice = Omit<Device, 'stateBytes' | 'state' | 'restore' | 'settled'> & {
  /** Makes the next `count` clips' updates, one clip each, to be sent by addClips. */
  prepare(count: number): void
}

/** y-protocols' sync message types. */
const SYNC = 0
const STEP1 = 0
const STEP2 = 1
const UPDATE = 2

/** The state vector and the update of an empty doc. */
const EMPTY_SV = Y.encodeStateVector(new Y.Doc())
const EMPTY_UPDATE = Y.encodeStateAsUpdate(new Y.Doc())

/**
 * Counts the clips of other clients that arrive, from the clocks of each
 * update, and this device's own as it sends them.
 */
class ClockCounter {
  readonly clips = new ArrivalCounter()
  private readonly clocks = new Map<number, number>()

  constructor(
    private readonly own: number,
    private readonly ticksPerClip: () => number,
  ) {}

  sent(n: number): void {
    this.clips.add(n, performance.now())
  }

  /** Any update: its clocks read with Y.parseUpdateMeta. */
  received(update: Uint8Array): void {
    const at = performance.now()
    let ticks = 0
    for (const [client, clock] of Y.parseUpdateMeta(update).to) ticks += this.reached(client, clock)
    if (ticks > 0) this.clips.add(ticks / this.ticksPerClip(), at)
  }

  /**
   * An update that is one clip of one client, as a peer relays them (each
   * update as it came): its end clock is its first struct's clock plus one
   * clip's ticks, read from the update's first bytes (update format v1:
   * clients, then the first client's struct count, id and clock). Were a
   * relay ever several clips, its devices would fall short and time out: it
   * cannot make a round look faster.
   */
  receivedClip(update: Uint8Array): void {
    const decoder = decoding.createDecoder(update)
    if (decoding.readVarUint(decoder) !== 1) return this.received(update)
    decoding.readVarUint(decoder) // structs
    const client = decoding.readVarUint(decoder)
    const ticks = this.reached(client, decoding.readVarUint(decoder) + this.ticksPerClip())
    if (ticks > 0) this.clips.add(ticks / this.ticksPerClip(), performance.now())
  }

  /** Clock ticks of `client` new up to `clock` (none for this device's own). */
  private reached(client: number, clock: number): number {
    if (client === this.own) return 0
    const had = this.clocks.get(client) ?? 0
    if (clock <= had) return 0
    this.clocks.set(client, clock)
    return clock - had
  }
}

/** The clips to send: updates made ahead in `doc` (the device's own; nothing else writes to it). */
class PreparedClips {
  private readonly updates: Uint8Array[] = []
  private made = 0
  private next = 0
  /** Clock ticks of one clip, from the first update made (all must match). */
  ticks = Number.NaN

  constructor(
    readonly doc: Y.Doc,
    private readonly deviceId: string,
  ) {
    this.doc.on('update', (update: Uint8Array) => {
      const meta = Y.parseUpdateMeta(update)
      const ticks = (meta.to.get(this.doc.clientID) ?? 0) - (meta.from.get(this.doc.clientID) ?? 0)
      if (Number.isNaN(this.ticks)) this.ticks = ticks
      else if (ticks !== this.ticks) throw new Error(`a clip took ${ticks} clock ticks, not ${this.ticks}`)
      this.updates.push(update)
    })
  }

  make(count: number): void {
    for (let i = 0; i < count; i++) putClips(Y, this.doc, this.deviceId, this.made++, 1)
  }

  take(): Uint8Array {
    const update = this.updates[this.next++]
    if (!update) throw new Error(`${this.deviceId}: no prepared clip left`)
    return update
  }
}

/** The minimal `ws` WebSocket used here (the peers' ws, with their zero masking key, see clients.ts). */
interface RawSocket {
  on(event: 'open', listener: () => void): void
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): void
  on(event: 'close' | 'error', listener: (arg: unknown) => void): void
  send(data: Uint8Array | string): void
  close(): void
  /** ws's TCP socket (not public API, but stable across ws 8). */
  readonly _socket?: { cork(): void; uncork(): void }
}

/** A device on a `ws` socket: its prepared clips, its arrivals counted, its protocol in the subclass. */
abstract class ProtocolDevice implements LoadDevice {
  readonly errors: string[] = []
  protected readonly prepared: PreparedClips
  protected readonly counter: ClockCounter
  private socket: RawSocket | undefined
  private onSynced: (() => void) | undefined
  private closed = false

  constructor(
    readonly deviceId: string,
    protected readonly url: string,
  ) {
    this.prepared = new PreparedClips(new Y.Doc(), deviceId)
    this.counter = new ClockCounter(this.prepared.doc.clientID, () => this.prepared.ticks)
  }

  get clips(): ArrivalCounter {
    return this.counter.clips
  }

  /** The socket's URL. */
  protected abstract address(): string
  /** Every message the server sends. */
  protected abstract receive(data: Buffer, isBinary: boolean): void
  /** Sends the protocol's first message, if the client speaks first. */
  protected opened(): void {
    // the server speaks first
  }
  abstract addClips(count: number): void

  connect(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.deviceId}: not synced within ${timeoutMs} ms (${this.errors.join('; ')})`)), timeoutMs)
      this.onSynced = () => {
        clearTimeout(timer)
        this.onSynced = undefined
        resolve()
      }
      const WS = loadPeerModules().WebSocket as new (url: string) => RawSocket
      const socket = new WS(this.address())
      this.socket = socket
      socket.on('open', () => this.opened())
      socket.on('message', (data, isBinary) => this.receive(data, isBinary))
      socket.on('error', (err) => {
        if (!this.closed) this.errors.push(`socket error: ${String(err)}`)
      })
      socket.on('close', () => {
        if (!this.closed) this.errors.push('connection closed')
      })
    })
  }

  /** The initial sync is done. */
  protected synced(): void {
    this.onSynced?.()
  }

  /**
   * Sends a frame; the frames a device sends in one turn leave in one write
   * (its TCP socket corked until the next tick), as the server's own do
   * (websockets/write-coalescer.ts): without it, the floor's load core was
   * saturated by write syscalls once the floor ran warm (91% at 18,800
   * updates/s).
   */
  protected send(data: Uint8Array | string): void {
    const socket = this.socket
    if (!socket) return
    const tcp = socket._socket
    if (tcp && !this.corked) {
      tcp.cork()
      this.corked = true
      process.nextTick(() => {
        this.corked = false
        tcp.uncork()
      })
    }
    socket.send(data)
  }
  private corked = false

  prepare(count: number): void {
    this.prepared.make(count)
  }

  unacked(): number {
    return 0
  }
  refused(): number {
    return 0
  }

  close(): void {
    this.closed = true
    this.socket?.close()
    this.prepared.doc.destroy()
  }
}

/** A peer's device: y-protocols sync messages built with lib0, framed by the subclass. */
abstract class YSyncDevice extends ProtocolDevice {
  constructor(
    deviceId: string,
    url: string,
    protected readonly room: string,
  ) {
    super(deviceId, url)
  }

  /** A sync message as the peer frames it: `write` adds the sync message type and its payload. */
  protected abstract frame(write: (e: encoding.Encoder) => void): Uint8Array
  /** Reads the peer's header; returns the decoder at the message type, or undefined for a message of another document. */
  protected abstract header(decoder: decoding.Decoder): decoding.Decoder | undefined

  protected override opened(): void {
    this.send(this.frame((e) => syncMessage(e, STEP1, EMPTY_SV)))
  }

  protected receive(data: Buffer): void {
    const decoder = this.header(decoding.createDecoder(data))
    if (!decoder || decoding.readVarUint(decoder) !== SYNC) return // awareness, acks, auth: nothing to count
    const type = decoding.readVarUint(decoder)
    if (type === STEP1) {
      // The server's state vector: this device has nothing the server lacks.
      this.send(this.frame((e) => syncMessage(e, STEP2, EMPTY_UPDATE)))
      return
    }
    const update = decoding.readVarUint8Array(decoder)
    if (type === STEP2) {
      this.counter.received(update)
      this.synced()
    } else this.counter.receivedClip(update)
  }

  addClips(count: number): void {
    for (let i = 0; i < count; i++) {
      const update = this.prepared.take()
      this.send(this.frame((e) => syncMessage(e, UPDATE, update)))
    }
    this.counter.sent(count)
  }
}

function syncMessage(e: encoding.Encoder, type: number, payload: Uint8Array): void {
  encoding.writeVarUint(e, SYNC)
  encoding.writeVarUint(e, type)
  encoding.writeVarUint8Array(e, payload)
}

/** y-websocket: the room is the URL's last segment; messages are the sync message itself. */
class YWebsocketLight extends YSyncDevice {
  protected address(): string {
    return `${this.url}/${this.room}`
  }
  protected frame(write: (e: encoding.Encoder) => void): Uint8Array {
    return encoding.encode(write)
  }
  protected header(decoder: decoding.Decoder): decoding.Decoder {
    return decoder
  }
}

/** Hocuspocus: every message starts with the document's name (no authentication: the bench server has no onAuthenticate). */
class HocuspocusLight extends YSyncDevice {
  protected address(): string {
    return this.url
  }
  protected frame(write: (e: encoding.Encoder) => void): Uint8Array {
    return encoding.encode((e) => {
      encoding.writeVarString(e, this.room)
      write(e)
    })
  }
  protected header(decoder: decoding.Decoder): decoding.Decoder | undefined {
    return decoding.readVarString(decoder) === this.room ? decoder : undefined
  }
}

/**
 * Ours and the floor: our protocol (§§1, 4) on `ws`, framed as Socket.IO v4
 * frames it (engine.io 4 over WebSocket), written here rather than through
 * socket.io-client, whose per-message work on the load core (encoding with
 * binary detection, a random masking key, the decoder's reconstruction, the
 * ack registry) capped the floor at 98% of the load's core. What goes on the
 * wire is what the SDK sends: `40{auth}` to connect, a `sync:request` and
 * each `sync:update` as a binary event in one binary frame (auth
 * `wire: 'single-frame'`, client/src/wire.ts), pongs to the server's pings.
 * With BENCH_PEERS_WIRE=default it is what plain socket.io-client sends
 * instead: a text frame with the placeholder, then the binary frame.
 * Acks are matched by id; at most OUR_WINDOW updates in flight.
 */
class SocketIoLight extends ProtocolDevice {
  private readonly queue: Uint8Array[] = []
  private readonly pendingAcks = new Set<number>()
  private nextAckId = 0
  private refusedCount = 0
  /** A binary event whose attachments are still to come: its header and the attachments so far. */
  private partial: { header: string; missing: number; attachments: Buffer[] } | undefined

  constructor(
    deviceId: string,
    url: string,
    private readonly token: string,
  ) {
    super(deviceId, url)
  }

  protected address(): string {
    return `${this.url.replace(/^http/, 'ws')}/socket.io/?EIO=4&transport=websocket`
  }

  protected receive(data: Buffer, isBinary: boolean): void {
    if (isBinary) return this.partial ? this.attachment(data) : this.singleFrame(data)
    const text = data.toString('utf8')
    switch (text[0]) {
      case '0': // engine.io open: connect the default namespace with the handshake's auth
        return this.send(`40${JSON.stringify({ token: this.token, deviceId: this.deviceId, ...(SINGLE_FRAME ? { wire: WIRE_SINGLE_FRAME } : {}) })}`)
      case '2': // ping
        return this.send('3')
      case '4':
        return this.packet(text.slice(1))
      default:
        return
    }
  }

  /** A socket.io packet: connect, its refusal, an event, a binary event's header, an ack. */
  private packet(p: string): void {
    switch (p[0]) {
      case '0': // connected: sync from an empty doc
        this.emitBinary('sync:request', `{"deviceId":${JSON.stringify(this.deviceId)},"stateVector":{"_placeholder":true,"num":0}}`, EMPTY_SV)
        return
      case '4':
        this.errors.push(`connect_error ${p.slice(1)}`)
        return
      case '2': // an event without binary
        if (p.startsWith('2["sync:complete"')) this.synced()
        else if (p.startsWith('2["sync:error"') && this.errors.length < 5) this.errors.push(p.slice(1))
        return
      case '5': {
        const dash = p.indexOf('-')
        this.partial = { header: p.slice(dash + 1), missing: Number(p.slice(1, dash)), attachments: [] }
        return
      }
      case '3': {
        const json = p.indexOf('[')
        const id = Number(p.slice(1, json))
        if (!this.pendingAcks.delete(id)) return
        if (!p.startsWith('{"ok":true', json + 1)) {
          this.refusedCount++
          if (this.errors.length < 5) this.errors.push(`refused: ${p.slice(json)}`)
        }
        this.pump()
        return
      }
      default:
        return
    }
  }

  private attachment(data: Buffer): void {
    const partial = this.partial
    if (!partial) return
    partial.attachments.push(data)
    if (--partial.missing > 0) return
    this.partial = undefined
    // A relay's update, or the sync response's (its first attachment: `update`, then `stateVector`).
    if (partial.header.startsWith('["sync:update"') || partial.header.startsWith('["sync:response"')) {
      const [update] = partial.attachments
      if (update) this.counter.received(update)
    }
  }

  /** A binary event in one frame: its header and its attachments (client/src/wire.ts). */
  private singleFrame(data: Buffer): void {
    const reader = decoding.createDecoder(data)
    decoding.readUint8(reader) // the format
    const header = decoding.readVarString(reader)
    // A relay's update, or the sync response's (its first attachment: `update`, then `stateVector`).
    if (header.includes('["sync:update"') || header.includes('["sync:response"')) this.counter.received(decoding.readVarUint8Array(reader))
  }

  /** A binary event with one attachment (`payload` holds its placeholder), with an ack when `ackId` is given. */
  private emitBinary(event: string, payload: string, binary: Uint8Array, ackId?: number): void {
    const header = `51-${ackId ?? ''}[${JSON.stringify(event)},${payload}]`
    // A binary WebSocket frame is an engine.io message as it is; a text one starts with its type, 4.
    if (SINGLE_FRAME) return this.send(packParts([header, binary]))
    this.send(`4${header}`)
    this.send(binary)
  }

  addClips(count: number): void {
    for (let i = 0; i < count; i++) this.queue.push(this.prepared.take())
    this.counter.sent(count)
    this.pump()
  }

  private pump(): void {
    while (this.pendingAcks.size < OUR_WINDOW && this.queue.length > 0) {
      const update = this.queue.shift()
      if (!update) break
      const id = this.nextAckId++
      this.pendingAcks.add(id)
      this.emitBinary('sync:update', UPDATE_PAYLOAD, update, id)
    }
  }

  override unacked(): number {
    return this.pendingAcks.size + this.queue.length
  }
  override refused(): number {
    return this.refusedCount
  }
}

/** `sync:update`'s payload: the update is the event's one attachment. */
const UPDATE_PAYLOAD = '{"update":{"_placeholder":true,"num":0}}'

/** A new, unconnected light device of `userId` on `server`. */
export async function newLightDevice(server: Pick<TargetServer, 'name' | 'url' | 'urls'>, userId: string, deviceId: string): Promise<LoadDevice> {
  switch (server.name) {
    case 'y-websocket':
      return new YWebsocketLight(deviceId, server.url, userId)
    case 'Hocuspocus':
      return new HocuspocusLight(deviceId, server.url, userId)
    case 'ours':
    case 'floor':
      return new SocketIoLight(deviceId, nodeUrl(server, userId), await tokenFor(userId))
  }
}

/** Light devices of `ids`, connected and synced, each with `clips` clips prepared. */
export async function connectLight(server: Pick<TargetServer, 'name' | 'url' | 'urls'>, ids: readonly { userId: string; deviceId: string }[], clips: number): Promise<LoadDevice[]> {
  const devices = await connectEach(server, ids, newLightDevice)
  for (const d of devices) d.prepare(clips)
  return devices
}
