/**
 * A benchmark device: a real Y.Doc and a real socket.io-client socket
 * (websocket transport only) speaking protocol §4. Unlike the test
 * helper it exposes timings: the initial sync's phases, each ack, and each
 * relayed update's arrival.
 */
import * as Y from 'yjs'
import { BenchSocketDevice, field } from './socket-device.js'

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

function binary(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v
  if (v instanceof ArrayBuffer) return new Uint8Array(v)
  return undefined
}

/**
 * What a sent or relayed update carries, by identity: the ids of the clips it
 * puts into `clips`. Each update the benchmark sends makes one clip; a relay
 * may carry several (the server merges one device's updates settled in the
 * same turn into one relay).
 */
export function updateKeys(update: Uint8Array): string[] {
  const keys: string[] = []
  for (const s of Y.decodeUpdate(update).structs) {
    // A new key's first write carries its parent by name.
    if (s instanceof Y.Item && (s.parent as unknown) === 'clips' && typeof s.parentSub === 'string') keys.push(s.parentSub)
  }
  return keys
}

/** The identity of an update the benchmark sends (one clip). */
export function updateKey(update: Uint8Array): string {
  const [key] = updateKeys(update)
  if (key === undefined) throw new Error('the update makes no clip')
  return key
}

/** A clip's text: every clip the benchmark makes, on either path, is this plus ` #n`. */
export const CONTENT = 'Lorem ipsum dolor sit amet, consectetur adipiscing elit'

/**
 * Puts `count` new clips into `doc` in one transaction, as the app does: a
 * Y.Map per clip (content, contentType, createdAt) under `<deviceId>-<n>` in
 * the top-level `clips` map, n from `first`. `Yjs` is the Yjs module `doc`
 * belongs to (the side-by-side benchmark drives other servers' clients with
 * their own copy of Yjs).
 */
export function putClips(Yjs: Pick<typeof Y, 'Map'>, doc: Y.Doc, deviceId: string, first: number, count: number): void {
  const clips = doc.getMap<Y.Map<unknown>>('clips')
  doc.transact(() => {
    for (let n = first; n < first + count; n++) {
      const clip = new Yjs.Map<unknown>()
      clip.set('content', `${CONTENT} #${n}`)
      clip.set('contentType', 'text')
      clip.set('createdAt', Date.now())
      clips.set(`${deviceId}-${n}`, clip)
    }
  })
}

/** Relays are `sync:update`s, identified by the relay itself. */
export class BenchDevice extends BenchSocketDevice<Relay> {
  readonly doc = new Y.Doc()
  private clipSeq = 0
  private captured: Uint8Array | undefined

  /** See BenchSocketDevice (`deflate: false`: do not offer permessage-deflate; `singleFrame`: the SDK's wire). */
  constructor(url: string, token: string, deviceId: string, userId: string, options: { deflate?: boolean; singleFrame?: boolean } = {}) {
    super(url, token, deviceId, userId, options)
    this.doc.on('update', (update: Uint8Array) => {
      this.captured = update
    })
    this.relayOn(
      'sync:update',
      (m) => {
        const update = binary(field(m, 'update'))
        const deviceId = field(m, 'deviceId')
        const serverTimestamp = field(m, 'serverTimestamp')
        return update && typeof deviceId === 'string' && typeof serverTimestamp === 'number' ? { update, deviceId, serverTimestamp } : undefined
      },
      (m) => `malformed relay: ${JSON.stringify(m)}`,
    )
  }

  /** Connects, sends `sync:request` on connect and resolves at `sync:complete` with the timings. */
  connectAndSync(timeoutMs = 30_000): Promise<SyncTiming> {
    return this.connectAndRun(timeoutMs, (fail) => {
      let tResponse = Number.NaN
      let response: { update: Uint8Array; stateVector: Uint8Array } | undefined
      return {
        request: () => {
          this.socket.emit('sync:request', { deviceId: this.deviceId, stateVector: Y.encodeStateVector(this.doc) })
        },
        response: (r) => {
          tResponse = performance.now()
          const update = binary(field(r, 'update'))
          const stateVector = binary(field(r, 'stateVector'))
          if (field(r, 'mode') !== 'yjs' || !update || !stateVector) return fail(`bad sync:response ${JSON.stringify(r)}`)
          response = { update, stateVector }
        },
        complete: (clock) =>
          response && {
            connectMs: clock.connectMs,
            requestToResponseMs: tResponse - clock.tConnect,
            requestToCompleteMs: clock.requestToCompleteMs,
            totalMs: clock.totalMs,
            update: response.update,
            stateVector: response.stateVector,
            wireBytes: clock.wireBytes,
          },
      }
    })
  }

  /** Adds `count` clips in one transaction, as the app does (a Y.Map per clip in `clips`); returns the update. */
  addClips(count = 1): Uint8Array {
    this.captured = undefined
    putClips(Y, this.doc, this.deviceId, this.clipSeq, count)
    this.clipSeq += count
    const update = this.captured
    if (!update) throw new Error('the transaction produced no update')
    return update
  }

  /** `sync:update` with an ack; `done` gets the reply (no timeout: the caller bounds the wait). */
  sendUpdate(update: Uint8Array, done: (reply: AckReply) => void): void {
    this.emitAcked(
      'sync:update',
      { update },
      (reply): AckReply => {
        const ts = field(reply, 'serverTimestamp')
        return { ok: true, ...(typeof ts === 'number' ? { serverTimestamp: ts } : {}) }
      },
      done,
    )
  }

  override close(): void {
    super.close()
    this.doc.destroy()
  }
}
