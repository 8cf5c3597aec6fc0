/**
 * A benchmark JSON device (PROTOCOL section 5): a real socket.io-client socket
 * (websocket transport only) that speaks change records, not Yjs. It creates
 * clips with `sync:entity_created` (the same clips BenchDevice makes as Y.Maps),
 * counts the change records relayed to it without keeping them, and times a
 * paged change-log sync. Unlike the test helper it keeps no entity state on
 * the hot path: what it receives is only counted and timed.
 */
import { io, type ManagerOptions, type Socket } from 'socket.io-client'
import { CONTENT, field, tcpBytesRead } from './device.js'

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

export class BenchJsonDevice {
  readonly socket: Socket
  /** Called for every relayed `sync:entity_created`, with the change id and its arrival time. */
  onRelay: ((changeId: string, at: number) => void) | undefined
  readonly errors: string[] = []
  private clipSeq = 0

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
      ...(options.deflate === false ? ({ perMessageDeflate: false } as unknown as Partial<ManagerOptions>) : {}),
    })
    this.socket.on('sync:entity_created', (c: unknown) => {
      const at = performance.now()
      const id = field(c, 'id')
      if (typeof id !== 'string') {
        this.errors.push(`malformed change record: ${JSON.stringify(c).slice(0, 200)}`)
        return
      }
      this.onRelay?.(id, at)
    })
    this.socket.on('sync:error', (e: unknown) => this.errors.push(`sync:error ${JSON.stringify(e)}`))
    this.socket.on('disconnect', (reason: string) => {
      if (reason !== 'io client disconnect') this.errors.push(`disconnected: ${reason}`)
    })
  }

  /**
   * Connects, then pages through a full change-log sync (`limit` per page, the
   * server's default when undefined) by asking for the next page as soon as a
   * page with `hasMore` arrives; resolves at `sync:complete`. The socket is
   * live (JSON) from then on.
   */
  connectAndSync(limit: number | undefined, timeoutMs = 30_000): Promise<ChangeLogTiming> {
    const { socket } = this
    return new Promise<ChangeLogTiming>((resolve, reject) => {
      const t0 = performance.now()
      let tConnect = Number.NaN
      let tFirstPage = Number.NaN
      let bytesAtRequest: number | undefined
      const pages: Page[] = []
      const raw: unknown[] = []
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
      const timer = setTimeout(() => fail(`no sync:complete within ${timeoutMs} ms (${pages.length} pages)`), timeoutMs)
      const request = (lastSyncTimestamp: number | undefined) => {
        const payload = {
          deviceId: this.deviceId,
          ...(limit === undefined ? {} : { limit }),
          ...(lastSyncTimestamp === undefined ? {} : { lastSyncTimestamp }),
        }
        socket.emit('sync:request', payload, (reply: unknown) => {
          if (field(reply, 'ok') !== true) fail(`sync:request refused: ${JSON.stringify(reply)}`)
        })
      }
      const onConnect = () => {
        tConnect = performance.now()
        bytesAtRequest = tcpBytesRead(socket)
        request(undefined)
      }
      const onConnectError = (err: Error) => fail(`connect_error ${err.message} ${JSON.stringify(field(err, 'data'))}`)
      const onResponse = (r: unknown) => {
        if (pages.length === 0) tFirstPage = performance.now()
        const page = asPage(r)
        if (!page) return fail(`bad sync:response ${JSON.stringify(r).slice(0, 200)}`)
        pages.push(page)
        raw.push(r)
        if (page.hasMore) {
          if (pages.length >= MAX_PAGES) return fail(`over ${MAX_PAGES} pages`)
          request(page.cursor)
        }
      }
      const onComplete = () => {
        const tComplete = performance.now()
        const bytesNow = tcpBytesRead(socket)
        cleanup()
        if (pages.length === 0) return reject(new Error(`${this.deviceId}: sync:complete before sync:response`))
        // Sizes and counts after the clock stopped: the client's own work is not part of the timing.
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
        resolve({
          connectMs: tConnect - t0,
          firstPageMs: tFirstPage - tConnect,
          requestToCompleteMs: tComplete - tConnect,
          totalMs: tComplete - t0,
          pages: pages.length,
          changes,
          clips: clips.size,
          changesJsonBytes,
          responseJsonBytes,
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
    this.socket.emit('sync:entity_created', change, (reply: unknown) => {
      if (field(reply, 'ok') === true) {
        const version = field(reply, 'version')
        const conflicts = field(reply, 'conflicts')
        done({
          ok: true,
          ...(typeof version === 'number' ? { version } : {}),
          ...(Array.isArray(conflicts) ? { conflicts: conflicts.length } : {}),
        })
      } else {
        done({ ok: false, error: JSON.stringify(field(reply, 'error') ?? reply) })
      }
    })
    return id
  }

  close(): void {
    this.onRelay = undefined
    this.socket.disconnect()
  }
}
