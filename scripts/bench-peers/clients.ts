/**
 * Devices of `npm run bench:peers`, one kind per server, each speaking its
 * server's own protocol through its own client: y-websocket's
 * `WebsocketProvider`, Hocuspocus's `HocuspocusProvider` (both with `ws` as
 * their WebSocket in Node), and ours, the benchmark's BenchDevice. Every
 * device makes the same Y.Doc operations (putClips: a Y.Map per clip in the
 * top-level `clips` map) and counts the clips its doc holds as they arrive,
 * so that every workload is timed the same way: until a device holds them.
 *
 * The peers' clients run with their own copy of Yjs, loaded from
 * .bench/peers (the same version as ours): a provider must apply updates to a
 * doc of the Yjs it was built against. Their modules are loaded with
 * `require` from there and narrowed to the few members used here.
 */
import type * as YTypes from 'yjs'
import * as Y from 'yjs'
import { BenchDevice, putClips } from '../bench/device.js'
import { tokenFor } from '../bench/scenarios.js'
import type { TargetServer } from './servers.js'
import { peerRequire } from './install.js'

type Yjs = typeof YTypes

/**
 * A count of clips held that can be waited on: fed by `add` (the light
 * devices of light-devices.ts count what arrives), or by a doc's `clips` map
 * (ClipCounter).
 */
export class ArrivalCounter {
  count = 0
  private waiters: { n: number; resolve: (at: number) => void }[] = []

  /** `n` more clips held, at `at` (performance.now()). */
  add(n: number, at: number): void {
    this.count += n
    if (this.waiters.length === 0) return
    const still: typeof this.waiters = []
    for (const w of this.waiters) {
      if (this.count >= w.n) w.resolve(at)
      else still.push(w)
    }
    this.waiters = still
  }

  /**
   * Resolves with the performance.now() of the change that brought the count
   * to `n` (now, if it is there already), or undefined after `timeoutMs`.
   */
  reach(n: number, timeoutMs: number): Promise<number | undefined> {
    if (this.count >= n) return Promise.resolve(performance.now())
    return new Promise((resolve) => {
      const waiter = {
        n,
        resolve: (at: number) => {
          clearTimeout(timer)
          resolve(at)
        },
      }
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter)
        resolve(undefined)
      }, timeoutMs)
      this.waiters.push(waiter)
    })
  }
}

/** The number of clips a doc holds, kept up to date from the `clips` map's events (YMap.size walks the whole map). */
export class ClipCounter extends ArrivalCounter {
  constructor(doc: YTypes.Doc) {
    super()
    doc.getMap('clips').observe((event) => {
      let added = 0
      for (const change of event.keys.values()) if (change.action === 'add') added++
      this.add(added, performance.now())
    })
  }
}

export interface Device {
  readonly deviceId: string
  readonly clips: ArrivalCounter
  /** What the client reported going wrong (refusals, unexpected disconnects). */
  readonly errors: string[]
  /** Connects and resolves once the protocol's own initial sync is done (provider `synced`; ours: `sync:complete`, its update applied). */
  connect(timeoutMs?: number): Promise<void>
  /** `count` new clips in one transaction; the client sends the update at once. */
  addClips(count: number): void
  /** Updates sent and not yet acknowledged: ours only (the peers' protocols have no acknowledgements). */
  unacked(): number
  /** Updates the server refused (ours; 0 for the peers). */
  refused(): number
  /** Bytes of Y.encodeStateAsUpdate of the device's doc. */
  stateBytes(): number
  /** Y.encodeStateAsUpdate of the device's doc: what the device holds (as its app would keep it). */
  state(): Uint8Array
  /**
   * Before `connect`: puts a kept state into the doc, as an app reopening it
   * does; the connect's sync then sends the server what it lacks (`settled`
   * resolves once the server has it: ours, its ack; the peers, at once).
   */
  restore(state: Uint8Array): void
  /** Resolves once every update this device sent is acknowledged (ours), or at once (the peers have no acknowledgements). */
  settled(timeoutMs: number): Promise<void>
  close(): void
}

/** Ours: binary events in one frame, as the SDK sends them; BENCH_PEERS_WIRE=default for plain socket.io-client's two. */
export const SINGLE_FRAME = process.env.BENCH_PEERS_WIRE !== 'default'

/** Ours: most updates in flight per device (the server queues at most 1024 per socket). */
export const OUR_WINDOW = 512

// ---- the peers' modules, loaded from .bench/peers ----

interface EventSource {
  on(event: string, listener: (...args: unknown[]) => void): void
}
interface WebsocketProviderLike extends EventSource {
  destroy(): void
}
type WebsocketProviderCtor = new (
  serverUrl: string,
  roomname: string,
  doc: YTypes.Doc,
  opts: { WebSocketPolyfill: unknown; disableBc: boolean; connect: boolean },
) => WebsocketProviderLike & { connect(): void }
interface HocuspocusProviderLike extends EventSource {
  destroy(): void
}
type HocuspocusProviderCtor = new (config: {
  websocketProvider: HocuspocusSocketLike
  name: string
  document: YTypes.Doc
  broadcast: boolean
  quiet: boolean
}) => HocuspocusProviderLike
interface HocuspocusSocketLike {
  destroy(): void
}
type HocuspocusSocketCtor = new (config: { url: string; WebSocketPolyfill: unknown; quiet: boolean }) => HocuspocusSocketLike

interface PeerModules {
  Y: Yjs
  WebSocket: unknown
  WebsocketProvider: WebsocketProviderCtor
  HocuspocusProvider: HocuspocusProviderCtor
  HocuspocusProviderWebsocket: HocuspocusSocketCtor
}

let peerModules: PeerModules | undefined

function member(mod: unknown, name: string, from: string): unknown {
  const value = typeof mod === 'object' && mod !== null ? (mod as Record<string, unknown>)[name] : undefined
  if (typeof value !== 'function') throw new Error(`${from} has no ${name} (is .bench/peers complete?)`)
  return value
}

/** ws's generateMask: leaves the key all zero. */
function zeroMask(_mask: Buffer): void {
  // nothing to fill
}

/** Loads the peers' client modules (once). */
export function loadPeerModules(): PeerModules {
  if (peerModules) return peerModules
  const require = peerRequire()
  // Yjs warns when a second copy is imported into one process (constructor checks across copies break). Each doc here
  // only ever meets one copy: ours with BenchDevice, the peers' with their providers. The flag is Yjs's own global.
  delete (globalThis as Record<string, unknown>)['__ $YJS$ __']
  const yjs: unknown = require('yjs')
  member(yjs, 'Doc', 'yjs')
  member(yjs, 'Map', 'yjs')
  const hocuspocus: unknown = require('@hocuspocus/provider')
  const ws: unknown = require('ws')
  if (typeof ws !== 'function') throw new Error('ws did not export the WebSocket class')
  const WS = ws as new (url: string, protocols: string | string[] | undefined, options: object) => object
  /**
   * What the providers construct (`new WebSocketPolyfill(url)`): ws with an
   * all-zero masking key, which ws then does not apply (the RFC wants a fresh
   * random key per frame against caching proxies; on loopback there is none),
   * and without offering permessage-deflate (neither peer server accepts it).
   * This spares the load a random key and an XOR pass per frame; the servers
   * still unmask every frame as before.
   */
  class LightWebSocket extends WS {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { generateMask: zeroMask, perMessageDeflate: false })
    }
  }
  peerModules = {
    Y: yjs as Yjs,
    WebSocket: LightWebSocket,
    WebsocketProvider: member(require('y-websocket'), 'WebsocketProvider', 'y-websocket') as WebsocketProviderCtor,
    HocuspocusProvider: member(hocuspocus, 'HocuspocusProvider', '@hocuspocus/provider') as HocuspocusProviderCtor,
    HocuspocusProviderWebsocket: member(hocuspocus, 'HocuspocusProviderWebsocket', '@hocuspocus/provider') as HocuspocusSocketCtor,
  }
  return peerModules
}

/** What the two providers' devices share: a doc of the peers' Yjs, clips put into it, the provider syncing it. */
abstract class ProviderDevice implements Device {
  readonly doc: YTypes.Doc
  readonly clips: ClipCounter
  readonly errors: string[] = []
  protected readonly m = loadPeerModules()
  private seq = 0
  protected closed = false

  constructor(
    readonly deviceId: string,
    protected readonly url: string,
    protected readonly room: string,
  ) {
    this.doc = new this.m.Y.Doc()
    this.clips = new ClipCounter(this.doc)
  }

  /** Creates the provider (which connects) and resolves at its `synced`. */
  protected abstract open(onSynced: () => void): void

  connect(timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.deviceId}: not synced within ${timeoutMs} ms (${this.errors.join('; ')})`)), timeoutMs)
      this.open(() => {
        clearTimeout(timer)
        resolve()
      })
    })
  }

  addClips(count: number): void {
    putClips(this.m.Y, this.doc, this.deviceId, this.seq, count)
    this.seq += count
  }

  unacked(): number {
    return 0
  }
  refused(): number {
    return 0
  }

  stateBytes(): number {
    return this.m.Y.encodeStateAsUpdate(this.doc).byteLength
  }

  state(): Uint8Array {
    return this.m.Y.encodeStateAsUpdate(this.doc)
  }

  restore(state: Uint8Array): void {
    this.m.Y.applyUpdate(this.doc, state)
  }

  settled(): Promise<void> {
    return Promise.resolve()
  }

  close(): void {
    this.closed = true
    this.doc.destroy()
  }
}

/** y-websocket's WebsocketProvider: room = the user, no BroadcastChannel (devices share this process). */
export class YWebsocketDevice extends ProviderDevice {
  private provider: WebsocketProviderLike | undefined

  protected open(onSynced: () => void): void {
    const provider = new this.m.WebsocketProvider(this.url, this.room, this.doc, {
      WebSocketPolyfill: this.m.WebSocket,
      disableBc: true,
      connect: false,
    })
    this.provider = provider
    let synced = false
    provider.on('synced', (state) => {
      if (state === true && !synced) {
        synced = true
        onSynced()
      }
    })
    provider.on('connection-error', () => {
      if (!this.closed) this.errors.push('connection error')
    })
    provider.on('connection-close', () => {
      if (!this.closed) this.errors.push('connection closed')
    })
    provider.connect()
  }

  override close(): void {
    this.closed = true
    this.provider?.destroy()
    super.close()
  }
}

/**
 * Hocuspocus's HocuspocusProvider on a connection of its own (a
 * HocuspocusProviderWebsocket: only that takes the WebSocket polyfill):
 * document name = the user, no BroadcastChannel.
 */
export class HocuspocusDevice extends ProviderDevice {
  private provider: HocuspocusProviderLike | undefined
  private socket: HocuspocusSocketLike | undefined

  protected open(onSynced: () => void): void {
    this.socket = new this.m.HocuspocusProviderWebsocket({ url: this.url, WebSocketPolyfill: this.m.WebSocket, quiet: true })
    const provider = new this.m.HocuspocusProvider({
      websocketProvider: this.socket,
      name: this.room,
      document: this.doc,
      broadcast: false,
      quiet: true,
    })
    this.provider = provider
    let synced = false
    provider.on('synced', (e) => {
      const state = typeof e === 'object' && e !== null ? (e as { state?: unknown }).state : undefined
      if (state !== false && !synced) {
        synced = true
        onSynced()
      }
    })
    provider.on('authenticationFailed', () => this.errors.push('authentication failed'))
    provider.on('close', () => {
      if (!this.closed) this.errors.push('connection closed')
    })
  }

  override close(): void {
    this.closed = true
    this.provider?.destroy()
    this.socket?.destroy()
    super.close()
  }
}

/**
 * Ours: BenchDevice (socket.io, protocol §4) keeping its doc whole:
 * the sync response and every relay applied, so that it holds what a
 * provider's doc holds. Updates go out as they are made, each acknowledged
 * once durable; at most `window` in flight, the rest queued in order.
 */
export class OurDevice implements Device {
  readonly clips: ClipCounter
  private readonly queue: Uint8Array[] = []
  private inflight = 0
  private refusedCount = 0

  constructor(
    private readonly bench: BenchDevice,
    private readonly window: number,
  ) {
    this.clips = new ClipCounter(bench.doc)
    bench.onRelay = (relay) => Y.applyUpdate(bench.doc, relay.update)
  }

  get deviceId(): string {
    return this.bench.deviceId
  }
  get errors(): string[] {
    return this.bench.errors
  }

  async connect(timeoutMs = 30_000): Promise<void> {
    const timing = await this.bench.connectAndSync(timeoutMs)
    // What the server lacks, encoded before the response is applied (protocol §4); nothing for a new doc.
    const lacking = this.restored ? Y.encodeStateAsUpdate(this.bench.doc, timing.stateVector) : undefined
    Y.applyUpdate(this.bench.doc, timing.update)
    if (lacking) {
      this.queue.push(lacking)
      this.pump()
    }
  }

  private restored = false

  restore(state: Uint8Array): void {
    this.restored = true
    Y.applyUpdate(this.bench.doc, state)
  }

  state(): Uint8Array {
    return Y.encodeStateAsUpdate(this.bench.doc)
  }

  async settled(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs
    while (this.unacked() > 0 && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 5))
  }

  addClips(count: number): void {
    this.queue.push(this.bench.addClips(count))
    this.pump()
  }

  private pump(): void {
    while (this.inflight < this.window && this.queue.length > 0) {
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

  stateBytes(): number {
    return Y.encodeStateAsUpdate(this.bench.doc).byteLength
  }

  close(): void {
    this.bench.close()
  }
}

/** A new, unconnected device of `userId` on `server`, of the kind that server speaks. */
export async function newDevice(server: Pick<TargetServer, 'name' | 'url'>, userId: string, deviceId: string): Promise<Device> {
  switch (server.name) {
    case 'y-websocket':
      return new YWebsocketDevice(deviceId, server.url, userId)
    case 'Hocuspocus':
      return new HocuspocusDevice(deviceId, server.url, userId)
    case 'ours':
    case 'floor':
      return new OurDevice(new BenchDevice(server.url, await tokenFor(userId), deviceId, userId, { singleFrame: SINGLE_FRAME }), OUR_WINDOW)
  }
}
