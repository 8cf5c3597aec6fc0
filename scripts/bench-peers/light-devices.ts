/**
 * Light devices for the fan-out workloads (1 and 2) of `npm run bench:peers`:
 * each speaks its server's wire protocol with as little client work as the
 * protocol allows, so that the load processes stay well under their core and
 * the figures are the server's (issue 13, item 1).
 *
 * - The clips' updates are made before the round starts, in a scratch Y.Doc
 *   with the same `putClips` as the full devices (one update of one new clip
 *   each), and during the round only sent: by `ws` as the peer's own
 *   message (y-websocket, Hocuspocus), or by socket.io-client as
 *   `sync:update` with an acknowledgement (ours and the floor: BenchDevice).
 * - What arrives is not applied to a doc. A device counts the clips it holds
 *   from the clocks in each update (`Y.parseUpdateMeta`): every clip is a
 *   Y.Map with three entries, so the same number of clock ticks (checked on
 *   the prepared updates), and a device of another client's clock `c` holds
 *   that client's first c / ticks clips. Its own clips count as sent.
 *
 * They answer the initial sync as the providers do (an empty doc: every round
 * is a fresh user). Workloads 3 to 7 keep the full clients of clients.ts.
 */
import * as decoding from 'lib0/decoding'
import * as encoding from 'lib0/encoding'
import * as Y from 'yjs'
import { BenchDevice, putClips } from '../bench/device.js'
import { tokenFor } from '../bench/scenarios.js'
import { ArrivalCounter, loadPeerModules, OUR_WINDOW, type Device } from './clients.js'
import type { TargetServer } from './servers.js'

/** What the fan-out load needs of a device. */
export type LoadDevice = Omit<Device, 'stateBytes'> & {
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

  received(update: Uint8Array): void {
    const at = performance.now()
    let ticks = 0
    for (const [client, clock] of Y.parseUpdateMeta(update).to) {
      if (client === this.own) continue
      const had = this.clocks.get(client) ?? 0
      if (clock <= had) continue
      this.clocks.set(client, clock)
      ticks += clock - had
    }
    if (ticks > 0) this.clips.add(ticks / this.ticksPerClip(), at)
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
  on(event: 'message', listener: (data: Buffer) => void): void
  on(event: 'close' | 'error', listener: (arg: unknown) => void): void
  send(data: Uint8Array): void
  close(): void
}

/** A device of a peer: a `ws` socket, the peer's messages built with lib0. */
abstract class RawDevice implements LoadDevice {
  readonly errors: string[] = []
  protected readonly prepared: PreparedClips
  protected readonly counter: ClockCounter
  protected socket: RawSocket | undefined
  private onSynced: (() => void) | undefined
  private closed = false

  constructor(
    readonly deviceId: string,
    protected readonly url: string,
    protected readonly room: string,
  ) {
    this.prepared = new PreparedClips(new Y.Doc(), deviceId)
    this.counter = new ClockCounter(this.prepared.doc.clientID, () => this.prepared.ticks)
  }

  get clips(): ArrivalCounter {
    return this.counter.clips
  }

  /** The socket's URL. */
  protected abstract address(): string
  /** A sync message as the peer frames it: `write` adds the sync message type and its payload. */
  protected abstract frame(write: (e: encoding.Encoder) => void): Uint8Array
  /** Reads the peer's header; returns the decoder at the message type, or undefined for a message of another document. */
  protected abstract header(decoder: decoding.Decoder): decoding.Decoder | undefined

  connect(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.deviceId}: not synced within ${timeoutMs} ms (${this.errors.join('; ')})`)), timeoutMs)
      this.onSynced = () => {
        clearTimeout(timer)
        resolve()
      }
      const WS = loadPeerModules().WebSocket as new (url: string) => RawSocket
      const socket = new WS(this.address())
      this.socket = socket
      socket.on('open', () => socket.send(this.frame((e) => syncMessage(e, STEP1, EMPTY_SV))))
      socket.on('message', (data) => this.receive(data))
      socket.on('error', (err) => {
        if (!this.closed) this.errors.push(`socket error: ${String(err)}`)
      })
      socket.on('close', () => {
        if (!this.closed) this.errors.push('connection closed')
      })
    })
  }

  private receive(data: Buffer): void {
    const decoder = this.header(decoding.createDecoder(data))
    if (!decoder || decoding.readVarUint(decoder) !== SYNC) return // awareness, acks, auth: nothing to count
    const type = decoding.readVarUint(decoder)
    if (type === STEP1) {
      // The server's state vector: this device has nothing the server lacks.
      this.socket?.send(this.frame((e) => syncMessage(e, STEP2, EMPTY_UPDATE)))
      return
    }
    this.counter.received(decoding.readVarUint8Array(decoder))
    if (type === STEP2) this.onSynced?.()
  }

  prepare(count: number): void {
    this.prepared.make(count)
  }

  addClips(count: number): void {
    for (let i = 0; i < count; i++) {
      const update = this.prepared.take()
      this.socket?.send(this.frame((e) => syncMessage(e, UPDATE, update)))
    }
    this.counter.sent(count)
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

function syncMessage(e: encoding.Encoder, type: number, payload: Uint8Array): void {
  encoding.writeVarUint(e, SYNC)
  encoding.writeVarUint(e, type)
  encoding.writeVarUint8Array(e, payload)
}

/** y-websocket: the room is the URL's last segment; messages are the sync message itself. */
class YWebsocketLight extends RawDevice {
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
class HocuspocusLight extends RawDevice {
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

/** Ours and the floor: BenchDevice's socket.io-client socket; the prepared updates go out as `sync:update`, at most OUR_WINDOW in flight. */
class OurLight implements LoadDevice {
  private readonly counter: ClockCounter
  private readonly prepared: PreparedClips
  private readonly queue: Uint8Array[] = []
  private inflight = 0
  private refusedCount = 0

  constructor(private readonly bench: BenchDevice) {
    this.prepared = new PreparedClips(bench.doc, bench.deviceId)
    this.counter = new ClockCounter(bench.doc.clientID, () => this.prepared.ticks)
    bench.onRelay = (relay) => this.counter.received(relay.update)
  }

  get deviceId(): string {
    return this.bench.deviceId
  }
  get errors(): string[] {
    return this.bench.errors
  }
  get clips(): ArrivalCounter {
    return this.counter.clips
  }

  async connect(timeoutMs = 30_000): Promise<void> {
    await this.bench.connectAndSync(timeoutMs)
  }

  prepare(count: number): void {
    this.prepared.make(count)
  }

  addClips(count: number): void {
    for (let i = 0; i < count; i++) this.queue.push(this.prepared.take())
    this.counter.sent(count)
    this.pump()
  }

  private pump(): void {
    while (this.inflight < OUR_WINDOW && this.queue.length > 0) {
      const update = this.queue.shift()
      if (!update) break
      this.inflight++
      this.bench.sendUpdate(update, (reply) => {
        this.inflight--
        if (!reply.ok) {
          this.refusedCount++
          if (this.bench.errors.length < 5) this.bench.errors.push(`refused: ${reply.error ?? '?'}`)
        }
        this.pump()
      })
    }
  }

  unacked(): number {
    return this.inflight + this.queue.length
  }
  refused(): number {
    return this.refusedCount
  }

  close(): void {
    this.bench.close()
  }
}

/** A new, unconnected light device of `userId` on `server`. */
export async function newLightDevice(server: Pick<TargetServer, 'name' | 'url'>, userId: string, deviceId: string): Promise<LoadDevice> {
  switch (server.name) {
    case 'y-websocket':
      return new YWebsocketLight(deviceId, server.url, userId)
    case 'Hocuspocus':
      return new HocuspocusLight(deviceId, server.url, userId)
    case 'ours':
    case 'floor':
      return new OurLight(new BenchDevice(server.url, await tokenFor(userId), deviceId, userId))
  }
}

/** Light devices of `ids`, connected and synced, each with `clips` clips prepared. */
export async function connectLight(server: Pick<TargetServer, 'name' | 'url'>, ids: readonly { userId: string; deviceId: string }[], clips: number): Promise<LoadDevice[]> {
  const devices = await Promise.all(ids.map((id) => newLightDevice(server, id.userId, id.deviceId)))
  const synced = await Promise.allSettled(devices.map((d) => d.connect(60_000)))
  const failed = synced.find((s) => s.status === 'rejected')
  if (failed) {
    for (const d of devices) d.close()
    throw new Error(`devices failed to sync: ${String(failed.reason)}`)
  }
  for (const d of devices) d.prepare(clips)
  return devices
}
