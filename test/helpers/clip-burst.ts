/**
 * Bursts of clips sent as separate Yjs updates with their acks tracked one by
 * one, and the check that a fresh device holds every acknowledged clip: what
 * the process-level durability tests (crash, shutdown) share.
 */
import * as Y from 'yjs'
import { within } from './child-server.js'
import { YjsDevice } from './device.js'

const CONNECT_TIMEOUT_MS = 20_000

/** Connects a device and waits (bounded) for its first `sync:complete`. */
export async function connectDevice(url: string, token: string, deviceId: string): Promise<YjsDevice> {
  const device = new YjsDevice(url, token, deviceId)
  const failed = new Promise<never>((_, reject) => {
    device.socket.once('connect_error', (e: Error) => reject(new Error(`device ${deviceId}: connect_error ${e.message}`)))
  })
  device.socket.connect()
  try {
    await within(Promise.race([device.synced(), failed]), CONNECT_TIMEOUT_MS, `device ${deviceId} to sync`)
  } catch (e) {
    device.close()
    throw e
  }
  return device
}

/** The content every clip of a burst carries, so presence checks also check content. */
export function clipContent(id: string): string {
  return `content of ${id}`
}

/**
 * Adds a clip to `writer` the way the app does (as `YjsDevice.addClip`) in its
 * own transaction, and returns that transaction's update.
 */
export function clipUpdate(writer: Y.Doc, id: string): Uint8Array {
  const updates: Uint8Array[] = []
  const capture = (u: Uint8Array) => updates.push(u)
  writer.on('update', capture)
  try {
    writer.transact(() => {
      const clip = new Y.Map<unknown>()
      clip.set('content', clipContent(id))
      clip.set('contentType', 'text')
      clip.set('createdAt', 1_700_000_000_000)
      writer.getMap('clips').set(id, clip)
    })
  } finally {
    writer.off('update', capture)
  }
  const [update] = updates
  if (updates.length !== 1 || !update) throw new Error(`expected one update for clip ${id}, got ${updates.length}`)
  return update
}

/** A burst of clips, each its own update, with one ack promise per clip. */
export class ClipBurst {
  /** Clip ids in send order. */
  readonly ids: string[]
  private readonly updates: Uint8Array[]
  /** Per sent clip: true once acknowledged `ok: true`, false when refused or never acknowledged. */
  private readonly acks: Promise<boolean>[] = []
  private readonly ok = new Set<string>()
  private readonly refusals: unknown[] = []

  constructor(prefix: string, count: number) {
    // A new Y.Doc per burst: its own client id, so a burst whose tail was lost
    // never leaves a later burst's updates waiting on missing clocks.
    const writer = new Y.Doc()
    this.ids = Array.from({ length: count }, (_, i) => `${prefix}-${i}`)
    this.updates = this.ids.map((id) => clipUpdate(writer, id))
    writer.destroy()
  }

  get sent(): number {
    return this.acks.length
  }

  /** Sends clips `[from, to)` over `device`, without waiting; returns their ack promises. */
  send(device: YjsDevice, from = 0, to = this.ids.length): Promise<boolean>[] {
    const sent: Promise<boolean>[] = []
    for (let i = from; i < to; i++) {
      const id = this.ids[i]
      const update = this.updates[i]
      if (id === undefined || update === undefined) throw new Error(`no clip ${i} in this burst`)
      // Emitting on a closed socket would buffer the event forever: those clips count as never sent.
      if (!device.socket.connected) break
      const ack = device.send(update).then(
        (reply) => {
          if (reply.ok) this.ok.add(id)
          else this.refusals.push(reply.error)
          return reply.ok
        },
        () => false, // disconnected before the ack arrived
      )
      this.acks.push(ack)
      sent.push(ack)
    }
    return sent
  }

  /** Waits (bounded) until every sent clip's ack has settled. */
  async settled(ms = 20_000): Promise<void> {
    await within(Promise.all(this.acks), ms, 'every ack of the burst to settle')
  }

  /** Ids of the clips acknowledged `ok: true`. */
  acked(): string[] {
    return this.ids.filter((id) => this.ok.has(id))
  }

  /** `ok: false` replies (the error objects). */
  refused(): unknown[] {
    return [...this.refusals]
  }
}

/** The ids among `ids` that `device` does not hold with the content they were sent with. */
export function missingClips(device: YjsDevice, ids: readonly string[]): string[] {
  const clips = device.clips()
  return ids.filter((id) => clips.get(id)?.get('content') !== clipContent(id))
}
