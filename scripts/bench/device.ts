/**
 * A benchmark device: a real Y.Doc and a real socket.io-client socket
 * (websocket transport only) speaking PROTOCOL section 4. Unlike the test
 * helper it exposes timings: the initial sync's phases, each ack, and each
 * relayed update's arrival.
 */
import { io, type ManagerOptions, type Socket } from 'socket.io-client'
import * as Y from 'yjs'

export interface Relay {
  update: Uint8Array
  deviceId: string
  serverTimestamp: number
}

export interface AckReply {
  ok: boolean
  serverTimestamp?: number
  error?: string
}

export interface SyncTiming {
  /** socket.connect() to the `connect` event (TCP + websocket + JWT handshake), ms. */
  connectMs: number
  /** `sync:request` sent to `sync:response` received, ms. */
  requestToResponseMs: number
  /** `sync:request` sent to `sync:complete` received, ms. */
  requestToCompleteMs: number
  /** socket.connect() to `sync:complete`, ms. */
  totalMs: number
  /** The `sync:response` update (exactly what the device lacked). */
  update: Uint8Array
  stateVector: Uint8Array
  /** TCP bytes read by this socket from `sync:request` to `sync:complete` (framing and compression included), if observable. */
  wireBytes: number | undefined
}

export function field(o: unknown, key: string): unknown {
  return typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[key] : undefined
}

function binary(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v
  if (v instanceof ArrayBuffer) return new Uint8Array(v)
  return undefined
}

/** A relayed update's identity: its bytes (the server relays exactly what was sent). */
export function updateKey(update: Uint8Array): string {
  return Buffer.from(update.buffer, update.byteOffset, update.byteLength).toString('latin1')
}

/** Bytes read so far by the socket under the engine.io websocket transport (ws's net.Socket). */
export function tcpBytesRead(socket: Socket): number | undefined {
  const netSocket = field(field(field(field(socket.io, 'engine'), 'transport'), 'ws'), '_socket')
  const n = field(netSocket, 'bytesRead')
  return typeof n === 'number' ? n : undefined
}

/** A clip's text: every clip the benchmark makes, on either path, is this plus ` #n`. */
export const CONTENT = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit'

export class BenchDevice {
  readonly doc = new Y.Doc()
  readonly socket: Socket
  /** Called for every relayed `sync:update`, with its arrival time (performance.now()). */
  onRelay: ((relay: Relay, at: number) => void) | undefined
  readonly errors: string[] = []
  private clipSeq = 0
  private captured: Uint8Array | undefined

  /**
   * `deflate: false` makes the client not offer permessage-deflate. By default
   * it offers it, as socket.io-client in Node and every browser do.
   */
  constructor(
    url: string,
    token: string,
    readonly deviceId: string,
    readonly userId: string,
    options: { deflate?: boolean } = {},
  ) {
    this.socket = io(url, {
      auth: { token, deviceId },
      transports: ['websocket'],
      reconnection: false,
      autoConnect: false,
      forceNew: true,
      // ws takes `perMessageDeflate: false` (do not offer the extension); engine.io-client's type only admits an object.
      ...(options.deflate === false ? ({ perMessageDeflate: false } as unknown as Partial<ManagerOptions>) : {}),
    })
    this.doc.on('update', (update: Uint8Array) => {
      this.captured = update
    })
    this.socket.on('sync:update', (m: unknown) => {
      const at = performance.now()
      const update = binary(field(m, 'update'))
      const deviceId = field(m, 'deviceId')
      const serverTimestamp = field(m, 'serverTimestamp')
      if (!update || typeof deviceId !== 'string' || typeof serverTimestamp !== 'number') {
        this.errors.push(`malformed relay: ${JSON.stringify(m)}`)
        return
      }
      this.onRelay?.({ update, deviceId, serverTimestamp }, at)
    })
    this.socket.on('sync:error', (e: unknown) => this.errors.push(`sync:error ${JSON.stringify(e)}`))
    this.socket.on('disconnect', (reason: string) => {
      if (reason !== 'io client disconnect') this.errors.push(`disconnected: ${reason}`)
    })
  }

  /** Connects, sends `sync:request` on connect and resolves at `sync:complete` with the timings. */
  connectAndSync(timeoutMs = 30_000): Promise<SyncTiming> {
    const { socket } = this
    return new Promise<SyncTiming>((resolve, reject) => {
      const t0 = performance.now()
      let tConnect = Number.NaN
      let tResponse = Number.NaN
      let bytesAtRequest: number | undefined
      let response: { update: Uint8Array; stateVector: Uint8Array } | undefined
      const cleanup = () => {
        clearTimeout(timer)
        socket.off('connect', onConnect)
        socket.off('connect_error', onConnectError)
        socket.off('sync:response', onResponse)
        socket.off('sync:complete', onComplete)
      }
      const fail = (message: string) => {
        cleanup()
        reject(new Error(`${this.deviceId}: ${message}`))
      }
      const timer = setTimeout(() => fail(`no sync:complete within ${timeoutMs} ms`), timeoutMs)
      const onConnect = () => {
        tConnect = performance.now()
        bytesAtRequest = tcpBytesRead(socket)
        socket.emit('sync:request', { deviceId: this.deviceId, stateVector: Y.encodeStateVector(this.doc) })
      }
      const onConnectError = (err: Error) => fail(`connect_error ${err.message} ${JSON.stringify(field(err, 'data'))}`)
      const onResponse = (r: unknown) => {
        tResponse = performance.now()
        const update = binary(field(r, 'update'))
        const stateVector = binary(field(r, 'stateVector'))
        if (field(r, 'mode') !== 'yjs' || !update || !stateVector) return fail(`bad sync:response ${JSON.stringify(r)}`)
        response = { update, stateVector }
      }
      const onComplete = () => {
        const tComplete = performance.now()
        const bytesNow = tcpBytesRead(socket)
        cleanup()
        if (!response) return reject(new Error(`${this.deviceId}: sync:complete before sync:response`))
        resolve({
          connectMs: tConnect - t0,
          requestToResponseMs: tResponse - tConnect,
          requestToCompleteMs: tComplete - tConnect,
          totalMs: tComplete - t0,
          update: response.update,
          stateVector: response.stateVector,
          wireBytes: bytesNow !== undefined && bytesAtRequest !== undefined ? bytesNow - bytesAtRequest : undefined,
        })
      }
      socket.on('connect', onConnect)
      socket.on('connect_error', onConnectError)
      socket.on('sync:response', onResponse)
      socket.on('sync:complete', onComplete)
      socket.connect()
    })
  }

  /** Adds `count` clips in one transaction, as the app does (a Y.Map per clip in `clips`); returns the update. */
  addClips(count = 1): Uint8Array {
    this.captured = undefined
    const clips = this.doc.getMap<Y.Map<unknown>>('clips')
    this.doc.transact(() => {
      for (let i = 0; i < count; i++) {
        const n = this.clipSeq++
        const clip = new Y.Map<unknown>()
        clip.set('content', `${CONTENT} #${n}`)
        clip.set('contentType', 'text')
        clip.set('createdAt', Date.now())
        clips.set(`${this.deviceId}-${n}`, clip)
      }
    })
    const update = this.captured
    if (!update) throw new Error('the transaction produced no update')
    return update
  }

  /** `sync:update` with an ack; `done` gets the reply (no timeout: the caller bounds the wait). */
  sendUpdate(update: Uint8Array, done: (reply: AckReply) => void): void {
    this.socket.emit('sync:update', { update }, (reply: unknown) => {
      if (field(reply, 'ok') === true) {
        const ts = field(reply, 'serverTimestamp')
        done({ ok: true, ...(typeof ts === 'number' ? { serverTimestamp: ts } : {}) })
      } else {
        done({ ok: false, error: JSON.stringify(field(reply, 'error') ?? reply) })
      }
    })
  }

  close(): void {
    this.onRelay = undefined
    this.socket.disconnect()
    this.doc.destroy()
  }
}
