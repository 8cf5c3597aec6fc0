/**
 * A Yjs device as a real client would be one: a Y.Doc and a socket.io-client
 * socket speaking protocol §4. On (re)connect it sends its state vector,
 * applies the server's diff and sends back what the server lacks; local edits
 * are sent as `sync:update` and each ack is recorded.
 */
import { singleFrameParser, WIRE_SINGLE_FRAME } from '@superclip/sync-client/wire'
import { io, type Socket } from 'socket.io-client'
import * as Y from 'yjs'

export type { Reply, YjsSyncResponse } from '../../src/types/events.js'
import type { Reply, YjsSyncResponse } from '../../src/types/events.js'

const REMOTE = Symbol('remote')

export interface YjsDeviceOptions {
  /**
   * On a sync, apply the server's diff before encoding what the server lacks,
   * against protocol §4. A local write to a map key that the diff
   * overwrote is then already deleted and garbage-collected, so its value is
   * no longer in the update sent back (the conflict record marks it
   * `collected`). Default false: encode first, as section 4 says.
   */
  applyBeforeEncode?: boolean
  /** Socket.IO transports to use (default: WebSocket only). */
  transports?: ('polling' | 'websocket')[]
  /** Binary packets as single messages, as the SDK sends them (`@superclip/sync-client/wire`); default: Socket.IO's default parser. */
  singleFrame?: boolean
}

export class YjsDevice {
  readonly doc = new Y.Doc()
  readonly socket: Socket
  /** Updates relayed to this device by the server. */
  readonly received: { update: Uint8Array; deviceId: string; serverTimestamp: number }[] = []
  readonly responses: YjsSyncResponse[] = []
  readonly errors: unknown[] = []
  /** Acks of this device's own updates that are still outstanding. */
  private pending = new Set<Promise<Reply>>()
  private syncedOnce: Promise<void>
  private live = true
  /** The ack of the update the doc's update handler sent last (read by `write`). */
  private lastLocalSend: Promise<Reply> | undefined

  constructor(
    url: string,
    readonly token: string,
    readonly deviceId: string,
    options: YjsDeviceOptions = {},
  ) {
    this.socket = io(url, {
      auth: options.singleFrame ? { token, deviceId, wire: WIRE_SINGLE_FRAME } : { token, deviceId },
      ...(options.singleFrame ? { parser: singleFrameParser } : {}),
      transports: options.transports ?? ['websocket'],
      reconnection: false,
      autoConnect: false,
    })
    this.syncedOnce = this.nextSync()
    this.socket.on('connect', () => this.requestSync())
    this.socket.on('sync:response', (r: YjsSyncResponse) => {
      this.responses.push(r)
      const early = options.applyBeforeEncode ? undefined : Y.encodeStateAsUpdate(this.doc, r.stateVector)
      Y.applyUpdate(this.doc, r.update, REMOTE)
      // Send what the server lacks (protocol §4).
      const mine = early ?? Y.encodeStateAsUpdate(this.doc, r.stateVector)
      void this.send(mine)
    })
    this.socket.on('sync:update', (m: { update: Uint8Array; deviceId: string; serverTimestamp: number }) => {
      this.received.push(m)
      Y.applyUpdate(this.doc, m.update, REMOTE)
    })
    this.socket.on('sync:error', (e: unknown) => this.errors.push(e))
    this.doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin !== REMOTE && this.live && this.socket.connected) this.lastLocalSend = this.send(update)
    })
  }

  static async connect(url: string, token: string, deviceId: string, options?: YjsDeviceOptions): Promise<YjsDevice> {
    const device = new YjsDevice(url, token, deviceId, options)
    device.socket.connect()
    await device.synced()
    return device
  }

  /** Resolves after the next `sync:complete`. */
  nextSync(): Promise<void> {
    return new Promise((resolve) => this.socket.once('sync:complete', () => resolve()))
  }

  synced(): Promise<void> {
    return this.syncedOnce
  }

  requestSync(): void {
    this.socket.emit('sync:request', { deviceId: this.deviceId, stateVector: Y.encodeStateVector(this.doc) })
  }

  send(update: Uint8Array): Promise<Reply> {
    const ack = this.socket.emitWithAck('sync:update', { update }) as Promise<Reply>
    this.pending.add(ack)
    // A device closed with acks outstanding loses them; flushed() is where they are checked.
    ack.then(
      () => this.pending.delete(ack),
      () => this.pending.delete(ack),
    )
    return ack
  }

  /** Waits until every update sent so far is acknowledged; throws on a refused one. */
  async flushed(): Promise<void> {
    while (this.pending.size > 0) {
      const replies = await Promise.all([...this.pending])
      const bad = replies.find((r) => !r.ok)
      if (bad) throw new Error(`update refused: ${JSON.stringify(bad)}`)
    }
  }

  /**
   * Runs `edit` as one local transaction and returns the ack of the update it
   * sent, or undefined when nothing was sent (offline, or no change): the edit
   * then stays in the doc and reaches the server with the next sync.
   */
  write(edit: () => void): Promise<Reply> | undefined {
    this.lastLocalSend = undefined
    this.doc.transact(edit)
    const ack = this.lastLocalSend
    this.lastLocalSend = undefined
    return ack
  }

  /** A round trip: everything the server sent this socket before it answers is received by then. */
  async barrier(): Promise<void> {
    const reply = (await this.socket.emitWithAck('sync:status', { deviceId: this.deviceId })) as Reply
    if (!reply.ok) throw new Error(`status refused: ${JSON.stringify(reply)}`)
  }

  /** Goes offline: edits are kept locally and sent on the next sync. */
  goOffline(): void {
    this.live = false
    this.socket.disconnect()
  }

  async reconnect(): Promise<void> {
    this.live = true
    const synced = this.nextSync()
    this.socket.connect()
    await synced
  }

  clips(): Y.Map<Y.Map<unknown>> {
    return this.doc.getMap('clips')
  }

  /** Adds a clip the way the app does: an entity map in the `clips` type map. */
  addClip(id: string, content: string): void {
    this.doc.transact(() => {
      const clip = new Y.Map<unknown>()
      clip.set('content', content)
      clip.set('contentType', 'text')
      clip.set('createdAt', 1_700_000_000_000)
      this.clips().set(id, clip)
    })
  }

  close(): void {
    this.live = false
    this.socket.disconnect()
    this.doc.destroy()
  }
}

/** One turn of this process's event loop (the server's too, when it runs in the test's process). */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve))
}

/** Polls `predicate` until it holds or `ms` pass (fails the test with `what`). */
export async function waitFor(predicate: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** The document's content as plain JSON, for equality checks. */
export function snapshot(doc: Y.Doc): unknown {
  return Object.fromEntries(
    ['clips', 'folders', 'sets', 'tags', 'templates', 'settings'].map((name) => [name, doc.getMap(name).toJSON()]),
  )
}
