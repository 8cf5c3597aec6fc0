/**
 * One client process of the SDK-cost part (sdk-cost.ts): a sender or a
 * receiver, either our SDK (`SyncClient`, storage 'memory', against our
 * server) or y-websocket's `WebsocketProvider` (against y-websocket's server;
 * its packages and its own Yjs loaded from .bench/peers, as bench:peers
 * does, with `ws` as its WebSocket, default options). A process only ever
 * loads the stack of its target, so that each one's CPU is its own.
 *
 * Both kinds make the same edits: one new clip per transaction, a `Y.Map`
 * under a new UUID in the top-level `clips` map with the same five fields in
 * the same order (for ours through `clips.create(fields)`, the SDK's API,
 * which validates the fields and makes the id; with `ids: 'given'`, the id is
 * `crypto.randomUUID()` passed in, as the y-websocket sender makes it).
 *
 * Requests: `connect` (resolves once synced), `edit` (makes `count` edits,
 * one per event-loop turn (`perSec` null) or paced at `perSec`; resolves once
 * all are made), `expect` (resolves once the doc holds `count` clips),
 * `mark` (starts the CPU count), `settle` (ours: waits until nothing is
 * pending, i.e. every edit acknowledged; reports the CPU since `mark`),
 * `close`. CPU is process.cpuUsage() (user + system, all threads).
 */
import { randomUUID } from 'node:crypto'
import { setImmediate as turn } from 'node:timers/promises'
import type * as YTypes from 'yjs'
import { peerRequire } from '../bench-peers/install.js'
import { epochNow, serveRequests } from './workers.js'

export type SdkTarget = 'ours' | 'y-websocket'

export type SdkRequest =
  | { type: 'connect'; target: SdkTarget; url: string; room: string; token: string; deviceId: string; ids: 'sdk' | 'given' }
  | { type: 'edit'; count: number; from: number; perSec: number | null }
  | { type: 'expect'; count: number; timeoutMs: number }
  | { type: 'mark' }
  | { type: 'settle'; timeoutMs: number }
  | { type: 'close' }

export type SdkReply =
  | { type: 'connected'; ms: number }
  | { type: 'edited'; startedAt: number; madeAt: number }
  | { type: 'expected'; at: number | null; held: number; cpuUs: number }
  | { type: 'marked' }
  | { type: 'settled'; at: number; pending: number; cpuUs: number }
  | { type: 'closed' }

/** What the part needs of either client. */
interface Client {
  /** One new clip, one transaction. */
  edit(n: number): void
  clipCount(): number
  /** The one listener called on each change of the clip count (replaces the last one). */
  onClip(listener: () => void): void
  /** Edits not yet acknowledged (y-websocket: none, its protocol has no acks). */
  pending(): number
  /** Resolves once nothing is pending (ours: `whenSynced()`; y-websocket: at once). */
  settled(): Promise<void>
  close(): Promise<void>
}

const CONTENT = 'x'.repeat(60)
const fieldsOf = (n: number) => ({ content: `clip ${n}: ${CONTENT}`, contentType: 'text' as const, title: `clip ${n}`, pinned: false, createdAt: Date.now() })

function countClips(doc: YTypes.Doc, listeners: (() => void)[]): { count: () => number } {
  let count = doc.getMap('clips').size
  doc.getMap('clips').observe((event) => {
    for (const change of event.keys.values()) if (change.action === 'add') count++
    for (const l of listeners) l()
  })
  return { count: () => count }
}

async function ourClient(req: Extract<SdkRequest, { type: 'connect' }>): Promise<Client> {
  const { SyncClient } = await import('@superclip/sync-client')
  const client = new SyncClient({ url: req.url, token: req.token, deviceId: req.deviceId, storage: 'memory' })
  await client.whenSynced()
  const listeners: (() => void)[] = []
  const counter = countClips(client.doc, listeners)
  return {
    edit: (n) => {
      if (req.ids === 'given') client.clips.create(fieldsOf(n), { id: randomUUID() })
      else client.clips.create(fieldsOf(n))
    },
    clipCount: counter.count,
    onClip: (l) => listeners.splice(0, listeners.length, l),
    pending: () => client.pendingChanges,
    settled: () => client.whenSynced(),
    close: () => client.close(),
  }
}

interface WebsocketProviderLike {
  on(event: string, listener: (...args: unknown[]) => void): void
  destroy(): void
}
type WebsocketProviderCtor = new (url: string, room: string, doc: YTypes.Doc, opts: { WebSocketPolyfill: unknown; disableBc: boolean }) => WebsocketProviderLike

async function yWebsocketClient(req: Extract<SdkRequest, { type: 'connect' }>): Promise<Client> {
  const require = peerRequire()
  const Y = require('yjs') as typeof YTypes
  const ws = require('ws') as unknown
  const { WebsocketProvider } = require('y-websocket') as { WebsocketProvider: WebsocketProviderCtor }
  const doc = new Y.Doc()
  const provider = new WebsocketProvider(req.url, req.room, doc, { WebSocketPolyfill: ws, disableBc: true })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('y-websocket: not synced within 30 s')), 30_000)
    provider.on('synced', (state) => {
      if (state === true) {
        clearTimeout(timer)
        resolve()
      }
    })
  })
  const listeners: (() => void)[] = []
  const counter = countClips(doc, listeners)
  const clips = doc.getMap<YTypes.Map<unknown>>('clips')
  return {
    edit: (n) => {
      doc.transact(() => {
        const clip = new Y.Map<unknown>()
        for (const [field, value] of Object.entries(fieldsOf(n))) clip.set(field, value)
        clips.set(randomUUID(), clip)
      })
    },
    clipCount: counter.count,
    onClip: (l) => listeners.splice(0, listeners.length, l),
    pending: () => 0,
    settled: () => Promise.resolve(),
    close: () => {
      provider.destroy()
      doc.destroy()
      return Promise.resolve()
    },
  }
}

let client: Client | undefined
let cpu0 = process.cpuUsage()
const cpuSinceMark = () => {
  const u = process.cpuUsage(cpu0)
  return u.user + u.system
}

function need(): Client {
  if (!client) throw new Error('not connected')
  return client
}

async function handle(req: SdkRequest): Promise<SdkReply> {
  switch (req.type) {
    case 'connect': {
      const t = performance.now()
      client = req.target === 'ours' ? await ourClient(req) : await yWebsocketClient(req)
      return { type: 'connected', ms: performance.now() - t }
    }
    case 'edit': {
      const c = need()
      const startedAt = epochNow()
      const t0 = performance.now()
      for (let i = 0; i < req.count; i++) {
        if (req.perSec === null) {
          // One edit per turn of the event loop: whatever the client does per tick (send, merge) happens between edits.
          await turn()
        } else {
          const due = t0 + (i * 1000) / req.perSec
          const wait = due - performance.now()
          if (wait >= 1) await new Promise((r) => setTimeout(r, wait))
          else await turn()
        }
        c.edit(req.from + i)
      }
      return { type: 'edited', startedAt, madeAt: epochNow() }
    }
    case 'expect': {
      const c = need()
      let at: number | null = c.clipCount() >= req.count ? epochNow() : null
      if (at === null) {
        at = await new Promise<number | null>((resolve) => {
          const timer = setTimeout(() => resolve(null), req.timeoutMs)
          c.onClip(() => {
            if (c.clipCount() >= req.count) {
              clearTimeout(timer)
              resolve(epochNow())
            }
          })
        })
      }
      return { type: 'expected', at, held: c.clipCount(), cpuUs: cpuSinceMark() }
    }
    case 'mark':
      cpu0 = process.cpuUsage()
      return { type: 'marked' }
    case 'settle': {
      const c = need()
      let timer: ReturnType<typeof setTimeout> | undefined
      await Promise.race([c.settled(), new Promise((r) => (timer = setTimeout(r, req.timeoutMs)))])
      clearTimeout(timer)
      return { type: 'settled', at: epochNow(), pending: c.pending(), cpuUs: cpuSinceMark() }
    }
    case 'close':
      await client?.close()
      client = undefined
      return { type: 'closed' }
  }
}

// Each WebsocketProvider adds a process 'exit' listener of its own.
process.setMaxListeners(0)
serveRequests(handle)
