/**
 * One load process of the reconnect storm (reconnect.ts): its share of the
 * SDK clients (`@superclip/sync-client`, storage 'memory'), created on
 * `open`, watched through their `status` events, reporting epoch times so
 * that the bench process can put every process's clients on one time line.
 *
 * Requests:
 * - `create`: creates the clients (backoff jitter as asked), not connected;
 * - `open`: connects them all at once and resolves when each is `synced` (or
 *   after the timeout): the time each took;
 * - `populate`: each client creates its clips; resolves when every client is
 *   synced with nothing pending and holds `expected` clips;
 * - `arm`: starts a new record (attempts, drops, syncs) for the storm;
 * - `wait`: resolves once every client has dropped and is `synced` again (or
 *   after the timeout, reporting the ones still out);
 * - `close`: closes every client.
 *
 * An attempt is a `connecting` status; it connected if `syncing` follows
 * (the SDK asks for the sync as soon as the socket is up); otherwise it was
 * refused: by the server (the SDK reports an `error` with its code:
 * UNAVAILABLE from a server shutting down, RATE_LIMITED) or by the network
 * (nothing listening: no event, counted as the rest).
 */
import { SyncClient, type SyncStatus } from '@superclip/sync-client'
import { epochNow, serveRequests } from './workers.js'

export type ReconnectRequest =
  | { type: 'create'; url: string; clients: { userId: string; deviceId: string; token: string }[]; jitter: boolean }
  | { type: 'open'; timeoutMs: number }
  | { type: 'populate'; clipsPerDevice: number; expected: number; timeoutMs: number }
  | { type: 'arm' }
  | { type: 'wait'; timeoutMs: number }
  | { type: 'close' }

/** What one process's clients did since `open` or `arm`. */
export interface ClientRecord {
  /** Per client: epoch ms it became synced (open) or synced again after its drop (wait); null if it did not. */
  syncedAt: (number | null)[]
  /** Per client: epoch ms it left `synced` (wait only; null for open or if it never dropped). */
  droppedAt: (number | null)[]
  /** Epoch ms of every connection attempt, and of every attempt that connected. */
  attemptAt: number[]
  connectedAt: number[]
  /** `error` events by code (refused handshakes, notices). */
  errors: Record<string, number>
  /** Clients that left `synced` more than once (dropped again after syncing). */
  flapping: number
  /** Clients not synced at the end, with their status and last error. */
  stuck: { deviceId: string; status: SyncStatus; lastError: string | null }[]
}

export type ReconnectReply =
  | { type: 'created' }
  | { type: 'opened'; record: ClientRecord }
  | { type: 'populated'; clips: number; short: number }
  | { type: 'armed' }
  | { type: 'waited'; record: ClientRecord }
  | { type: 'closed' }

interface Tracked {
  client: SyncClient
  deviceId: string
  syncedAt: number | null
  droppedAt: number | null
  drops: number
  prev: SyncStatus
}

let tracked: Tracked[] = []
let record: { attemptAt: number[]; connectedAt: number[]; errors: Record<string, number> } = { attemptAt: [], connectedAt: [], errors: {} }
/** `open`: synced the first time counts; `wait`: synced after a drop counts. */
let mode: 'open' | 'storm' = 'open'

function watch(t: Tracked): void {
  t.client.on('status', (status) => {
    const now = epochNow()
    const prev = t.prev
    t.prev = status
    if (status === 'connecting') record.attemptAt.push(now)
    if (status === 'syncing' && prev === 'connecting') record.connectedAt.push(now)
    if (prev === 'synced' && status !== 'synced') {
      t.drops++
      if (t.droppedAt === null) t.droppedAt = now
    }
    if (status === 'synced' && t.syncedAt === null && (mode === 'open' || t.droppedAt !== null)) t.syncedAt = now
  })
  t.client.on('error', (err) => {
    record.errors[err.code] = (record.errors[err.code] ?? 0) + 1
  })
}

function snapshot(): ClientRecord {
  return {
    syncedAt: tracked.map((t) => t.syncedAt),
    droppedAt: tracked.map((t) => t.droppedAt),
    attemptAt: record.attemptAt,
    connectedAt: record.connectedAt,
    errors: record.errors,
    flapping: tracked.filter((t) => t.drops > 1).length,
    stuck: tracked
      .filter((t) => t.syncedAt === null || t.client.status !== 'synced')
      .slice(0, 20)
      .map((t) => ({ deviceId: t.deviceId, status: t.client.status, lastError: t.client.lastError ? `${t.client.lastError.code}: ${t.client.lastError.message}` : null })),
  }
}

function reset(): void {
  record = { attemptAt: [], connectedAt: [], errors: {} }
  for (const t of tracked) {
    t.syncedAt = null
    t.droppedAt = null
    t.drops = 0
  }
}

/** Polls `done` every 10 ms until it holds or `ms` pass. */
async function until(done: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms
  while (!done()) {
    if (performance.now() > deadline) return false
    await new Promise((r) => setTimeout(r, 10))
  }
  return true
}

async function handle(req: ReconnectRequest): Promise<ReconnectReply> {
  switch (req.type) {
    case 'create': {
      tracked = req.clients.map(({ deviceId, token }) => {
        const client = new SyncClient({ url: req.url, token, deviceId, storage: 'memory', backoff: { jitter: req.jitter }, autoConnect: false })
        const t: Tracked = { client, deviceId, syncedAt: null, droppedAt: null, drops: 0, prev: client.status }
        watch(t)
        return t
      })
      await Promise.all(tracked.map((t) => t.client.ready))
      return { type: 'created' }
    }
    case 'open': {
      mode = 'open'
      reset()
      for (const t of tracked) t.client.connect()
      await until(() => tracked.every((t) => t.syncedAt !== null), req.timeoutMs)
      return { type: 'opened', record: snapshot() }
    }
    case 'populate': {
      let n = 0
      for (const t of tracked) {
        for (let c = 0; c < req.clipsPerDevice; c++) {
          t.client.clips.create({ content: `clip ${n++} of ${t.deviceId}: ${'x'.repeat(60)}`, contentType: 'text', title: `clip ${c}`, pinned: false })
        }
      }
      const full = (t: Tracked) => t.client.status === 'synced' && t.client.pendingChanges === 0 && t.client.clips.map.size >= req.expected
      await until(() => tracked.every(full), req.timeoutMs)
      return { type: 'populated', clips: tracked.reduce((s, t) => s + t.client.clips.map.size, 0), short: tracked.filter((t) => !full(t)).length }
    }
    case 'arm':
      mode = 'storm'
      reset()
      return { type: 'armed' }
    case 'wait': {
      await until(() => tracked.every((t) => t.syncedAt !== null && t.client.status === 'synced'), req.timeoutMs)
      return { type: 'waited', record: snapshot() }
    }
    case 'close': {
      await Promise.all(tracked.map((t) => t.client.close()))
      tracked = []
      return { type: 'closed' }
    }
  }
}

serveRequests(handle)
