/**
 * What the benchmark's two kinds of device share: a real socket.io-client
 * socket (websocket transport only), the errors it reports, relays timed on
 * arrival, acknowledged emits, and a connect-then-sync round with its timings.
 * BenchDevice (Yjs, protocol §4) and BenchJsonDevice (change records,
 * section 5) add what they send and how they read a sync.
 */
import { singleFrameParser, WIRE_SINGLE_FRAME } from '@superclip/sync-client/wire'
import { io, type ManagerOptions, type Socket } from 'socket.io-client'

export function field(o: unknown, key: string): unknown {
  return typeof o === 'object' && o !== null ? (o as Record<string, unknown>)[key] : undefined
}

/** Bytes read so far by the socket under the engine.io websocket transport (ws's net.Socket). */
export function tcpBytesRead(socket: Socket): number | undefined {
  const netSocket = field(field(field(field(socket.io, 'engine'), 'transport'), 'ws'), '_socket')
  const n = field(netSocket, 'bytesRead')
  return typeof n === 'number' ? n : undefined
}

/** An acknowledgement that was not ok, with the error (or the whole reply) as JSON. */
export interface Refused {
  ok: false
  error: string
}

/** The timings every connect-then-sync has, taken by BenchSocketDevice.connectAndRun. */
export interface SyncClock {
  /** socket.connect() to the `connect` event (TCP + websocket + JWT handshake), ms. */
  connectMs: number
  /** First `sync:request` sent to `sync:complete` received, ms. */
  requestToCompleteMs: number
  /** socket.connect() to `sync:complete`, ms. */
  totalMs: number
  /** performance.now() at the `connect` event, when the first `sync:request` goes out. */
  tConnect: number
  /** TCP bytes read by the socket from the first `sync:request` to `sync:complete` (framing and compression included), if observable. */
  wireBytes: number | undefined
}

/** One connect-then-sync as a kind of device speaks it. */
export interface SyncRound<T> {
  /** Sends the first `sync:request` (on `connect`). */
  request(): void
  /** Reads one `sync:response`. */
  response(r: unknown): void
  /** At `sync:complete` (the clock stopped): the result, or undefined when no `sync:response` came before it. */
  complete(clock: SyncClock): T | undefined
  /** Appended to the timeout's message. */
  timeoutNote?(): string
}

/** A benchmark device's socket; `R` is what a relay it receives is identified by. */
export abstract class BenchSocketDevice<R> {
  readonly socket: Socket
  /** Called for every relayed change, with its arrival time (performance.now()). */
  onRelay: ((relay: R, at: number) => void) | undefined
  readonly errors: string[] = []

  /**
   * `deflate: false` makes the client not offer permessage-deflate. By default
   * it offers it, as socket.io-client in Node and every browser do.
   * `singleFrame: true` sends and asks for binary packets as one message each,
   * as the SDK does (client/src/wire.ts); by default the device speaks plain
   * socket.io-client's two.
   */
  constructor(
    url: string,
    token: string,
    readonly deviceId: string,
    readonly userId: string,
    options: { deflate?: boolean; singleFrame?: boolean } = {},
  ) {
    this.socket = io(url, {
      auth: { token, deviceId, ...(options.singleFrame ? { wire: WIRE_SINGLE_FRAME } : {}) },
      ...(options.singleFrame ? { parser: singleFrameParser } : {}),
      transports: ['websocket'],
      reconnection: false,
      autoConnect: false,
      forceNew: true,
      // ws takes `perMessageDeflate: false` (do not offer the extension); engine.io-client's type only admits an object.
      ...(options.deflate === false ? ({ perMessageDeflate: false } as unknown as Partial<ManagerOptions>) : {}),
    })
    this.socket.on('sync:error', (e: unknown) => this.errors.push(`sync:error ${JSON.stringify(e)}`))
    this.socket.on('disconnect', (reason: string) => {
      if (reason !== 'io client disconnect') this.errors.push(`disconnected: ${reason}`)
    })
  }

  /** Relays arrive as `event`: `parse` reads one, or returns undefined and the payload is recorded as `malformed(payload)`. */
  protected relayOn(event: string, parse: (m: unknown) => R | undefined, malformed: (m: unknown) => string): void {
    this.socket.on(event, (m: unknown) => {
      const at = performance.now()
      const relay = parse(m)
      if (relay === undefined) {
        this.errors.push(malformed(m))
        return
      }
      this.onRelay?.(relay, at)
    })
  }

  /** Emits `event` with an ack; `done` gets `accepted(reply)` for an ok reply, else the refusal (no timeout: the caller bounds the wait). */
  protected emitAcked<A>(event: string, payload: unknown, accepted: (reply: unknown) => A, done: (ack: A | Refused) => void): void {
    this.socket.emit(event, payload, (reply: unknown) => {
      if (field(reply, 'ok') === true) done(accepted(reply))
      else done({ ok: false, error: JSON.stringify(field(reply, 'error') ?? reply) })
    })
  }

  /**
   * Connects, starts the round on `connect` and resolves at `sync:complete`
   * with what the round makes of it. Rejects on connect_error, on what the
   * round fails (`fail`), or without `sync:complete` within `timeoutMs`.
   */
  protected connectAndRun<T>(timeoutMs: number, makeRound: (fail: (message: string) => void) => SyncRound<T>): Promise<T> {
    const { socket } = this
    return new Promise<T>((resolve, reject) => {
      const t0 = performance.now()
      let tConnect = Number.NaN
      let bytesAtRequest: number | undefined
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
      const timer = setTimeout(() => fail(`no sync:complete within ${timeoutMs} ms${round.timeoutNote?.() ?? ''}`), timeoutMs)
      const round = makeRound(fail)
      const onConnect = () => {
        tConnect = performance.now()
        bytesAtRequest = tcpBytesRead(socket)
        round.request()
      }
      const onConnectError = (err: Error) => fail(`connect_error ${err.message} ${JSON.stringify(field(err, 'data'))}`)
      const onResponse = (r: unknown) => round.response(r)
      const onComplete = () => {
        const tComplete = performance.now()
        const bytesNow = tcpBytesRead(socket)
        cleanup()
        const result = round.complete({
          connectMs: tConnect - t0,
          requestToCompleteMs: tComplete - tConnect,
          totalMs: tComplete - t0,
          tConnect,
          wireBytes: bytesNow !== undefined && bytesAtRequest !== undefined ? bytesNow - bytesAtRequest : undefined,
        })
        if (result === undefined) return reject(new Error(`${this.deviceId}: sync:complete before sync:response`))
        resolve(result)
      }
      socket.on('connect', onConnect)
      socket.on('connect_error', onConnectError)
      socket.on('sync:response', onResponse)
      socket.on('sync:complete', onComplete)
      socket.connect()
    })
  }

  close(): void {
    this.onRelay = undefined
    this.socket.disconnect()
  }
}
