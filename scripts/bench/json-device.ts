/**
 * A benchmark JSON device (protocol §5): a real socket.io-client socket
 * (websocket transport only) that speaks change records, not Yjs. It creates
 * clips with `sync:entity_created` (the same clips BenchDevice makes as Y.Maps),
 * counts the change records relayed to it without keeping them, and times a
 * paged change-log sync. Unlike the test helper it keeps no entity state on
 * the hot path: what it receives is only counted and timed.
 */
import { CONTENT } from './device.js'
import { BenchSocketDevice, field, type SyncClock } from './socket-device.js'

/** The acknowledgement of one change record, as far as the benchmark cares. */
export interface ChangeAck {
  ok: boolean
  version?: number
  conflicts?: number
  error?: string
}

export interface ChangeLogTiming {
  /** socket.connect() to the `connect` event, ms. */
  connectMs: number
  /** First `sync:request` sent to its first `sync:response`, ms. */
  firstPageMs: number
  /** First `sync:request` sent to `sync:complete` received, ms (every page in between). */
  requestToCompleteMs: number
  /** socket.connect() to `sync:complete`, ms. */
  totalMs: number
  pages: number
  /** Change records received, over all pages. */
  changes: number
  /** Distinct clip ids among them. */
  clips: number
  /** JSON text length of the pages' `changes` arrays, summed (what the records weigh as JSON). */
  changesJsonBytes: number
  /** JSON text length of the whole `sync:response` payloads, summed. */
  responseJsonBytes: number
  /** TCP bytes this socket read from the first `sync:request` to `sync:complete`, if observable. */
  wireBytes: number | undefined
}

interface Page {
  changes: unknown[]
  hasMore: boolean
  cursor: number
}

function asPage(r: unknown): Page | undefined {
  const changes = field(r, 'changes')
  const hasMore = field(r, 'hasMore')
  const cursor = field(r, 'cursor')
  if (field(r, 'mode') !== 'changes' || !Array.isArray(changes) || typeof hasMore !== 'boolean' || typeof cursor !== 'number') {
    return undefined
  }
  return { changes: changes as unknown[], hasMore, cursor }
}

/** Most pages a change-log sync may take before the benchmark calls it stuck. */
const MAX_PAGES = 1000

/** A change-log sync's timing from its pages; sizes and counts are taken after the clock stopped (the client's own work is not timed). */
function changeLogTiming(pages: readonly Page[], raw: readonly unknown[], tFirstPage: number, clock: SyncClock): ChangeLogTiming {
  const clips = new Set<string>()
  let changes = 0
  let changesJsonBytes = 0
  let responseJsonBytes = 0
  for (const page of pages) {
    changes += page.changes.length
    changesJsonBytes += JSON.stringify(page.changes).length
    for (const c of page.changes) {
      const id = field(c, 'entityId')
      if (field(c, 'entityType') === 'clip' && typeof id === 'string' && typeof field(field(c, 'data'), 'content') === 'string') {
        clips.add(id)
      }
    }
  }
  for (const r of raw) responseJsonBytes += JSON.stringify(r).length
  return {
    connectMs: clock.connectMs,
    firstPageMs: tFirstPage - clock.tConnect,
    requestToCompleteMs: clock.requestToCompleteMs,
    totalMs: clock.totalMs,
    pages: pages.length,
    changes,
    clips: clips.size,
    changesJsonBytes,
    responseJsonBytes,
    wireBytes: clock.wireBytes,
  }
}

/** Relays are `sync:entity_created` change records, identified by their change id. */
export class BenchJsonDevice extends BenchSocketDevice<string> {
  private clipSeq = 0

  /** See BenchSocketDevice (`deflate: false`: do not offer permessage-deflate). */
  constructor(url: string, token: string, deviceId: string, userId: string, options: { deflate?: boolean } = {}) {
    super(url, token, deviceId, userId, options)
    this.relayOn(
      'sync:entity_created',
      (c) => {
        const id = field(c, 'id')
        return typeof id === 'string' ? id : undefined
      },
      (c) => `malformed change record: ${JSON.stringify(c).slice(0, 200)}`,
    )
  }

  /**
   * Connects, then pages through a full change-log sync (`limit` per page, the
   * server's default when undefined) by asking for the next page as soon as a
   * page with `hasMore` arrives; resolves at `sync:complete`. The socket is
   * live (JSON) from then on.
   */
  connectAndSync(limit: number | undefined, timeoutMs = 30_000): Promise<ChangeLogTiming> {
    return this.connectAndRun(timeoutMs, (fail) => {
      let tFirstPage = Number.NaN
      const pages: Page[] = []
      const raw: unknown[] = []
      const request = (lastSyncTimestamp: number | undefined) => {
        const payload = {
          deviceId: this.deviceId,
          ...(limit === undefined ? {} : { limit }),
          ...(lastSyncTimestamp === undefined ? {} : { lastSyncTimestamp }),
        }
        this.socket.emit('sync:request', payload, (reply: unknown) => {
          if (field(reply, 'ok') !== true) fail(`sync:request refused: ${JSON.stringify(reply)}`)
        })
      }
      return {
        request: () => request(undefined),
        response: (r) => {
          if (pages.length === 0) tFirstPage = performance.now()
          const page = asPage(r)
          if (!page) return fail(`bad sync:response ${JSON.stringify(r).slice(0, 200)}`)
          pages.push(page)
          raw.push(r)
          if (page.hasMore) {
            if (pages.length >= MAX_PAGES) return fail(`over ${MAX_PAGES} pages`)
            request(page.cursor)
          }
        },
        complete: (clock) => (pages.length === 0 ? undefined : changeLogTiming(pages, raw, tFirstPage, clock)),
        timeoutNote: () => ` (${pages.length} pages)`,
      }
    })
  }

  /**
   * Sends one new clip as `sync:entity_created` (the fields BenchDevice.addClips
   * writes); `done` gets the ack. Returns the change id (relays carry it).
   */
  createClip(done: (ack: ChangeAck) => void): string {
    const n = this.clipSeq++
    const id = `${this.deviceId}-c${n}`
    const change = {
      id,
      entityType: 'clip',
      entityId: `${this.deviceId}-${n}`,
      data: { content: `${CONTENT} #${n}`, contentType: 'text', createdAt: Date.now() },
      version: 0,
    }
    this.emitAcked(
      'sync:entity_created',
      change,
      (reply): ChangeAck => {
        const version = field(reply, 'version')
        const conflicts = field(reply, 'conflicts')
        return {
          ok: true,
          ...(typeof version === 'number' ? { version } : {}),
          ...(Array.isArray(conflicts) ? { conflicts: conflicts.length } : {}),
        }
      },
      done,
    )
    return id
  }
}
