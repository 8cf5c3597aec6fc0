/**
 * A JSON device as a client that does not speak Yjs would be one (protocol
 * §5): it pages through a change-log sync, keeps each entity's latest
 * state, applies live `sync:entity_*` records, and sends change records.
 */
import { io, type Socket } from 'socket.io-client'
import type * as Y from 'yjs'
import type { StatusPayload } from '../../src/types/events.js'
import { SyncOperationType, type SyncChange, type SyncConflict } from '../../src/types/sync.js'
import type { YjsDevice } from './device.js'

export type { Reply } from '../../src/types/events.js'
import type { ChangesSyncResponse as ChangesPage, Reply, SyncCompletePayload as SyncComplete } from '../../src/types/events.js'
export type { ChangesSyncResponse as ChangesPage, SyncCompletePayload as SyncComplete } from '../../src/types/events.js'

export interface EntityState {
  version: number
  timestamp: number
  deleted: boolean
  data: Record<string, unknown>
}

export interface SyncOptions {
  entities?: string[]
  limit?: number
  includeDeleted?: boolean
  /** Incremental from this cursor; omitted for a full sync. */
  lastSyncTimestamp?: number
}

let changeCounter = 0

export class JsonDevice {
  readonly socket: Socket
  /** Latest state per `type:id`. */
  readonly entities = new Map<string, EntityState>()
  /** Live change records received. */
  readonly live: SyncChange[] = []
  readonly conflicts: SyncConflict[] = []
  readonly pages: ChangesPage[] = []
  readonly events: string[] = []
  /** Every event received, in order, with its payload. */
  readonly messages: { event: string; payload: unknown }[] = []
  cursor: number | undefined

  constructor(
    url: string,
    readonly token: string,
    readonly deviceId: string,
  ) {
    this.socket = io(url, { auth: { token, deviceId }, transports: ['websocket'], reconnection: false, autoConnect: false })
    this.socket.onAny((event: string, payload: unknown) => {
      this.events.push(event)
      this.messages.push({ event, payload })
    })
    this.socket.on('sync:response', (page: ChangesPage) => this.pages.push(page))
    for (const event of ['sync:entity_created', 'sync:entity_updated', 'sync:entity_deleted']) {
      this.socket.on(event, (change: SyncChange) => {
        this.live.push(change)
        this.apply(change)
      })
    }
    this.socket.on('sync:conflict', (c: SyncConflict) => this.conflicts.push(c))
  }

  static async connect(url: string, token: string, deviceId: string, options: SyncOptions = {}): Promise<JsonDevice> {
    const device = new JsonDevice(url, token, deviceId)
    await device.open()
    await device.sync(options)
    return device
  }

  /** A connected socket that has not synced yet (so it is not live). */
  static async connectUnsynced(url: string, token: string, deviceId: string): Promise<JsonDevice> {
    const device = new JsonDevice(url, token, deviceId)
    await device.open()
    return device
  }

  async open(): Promise<void> {
    const connected = new Promise<void>((resolve, reject) => {
      this.socket.once('connect', () => resolve())
      this.socket.once('connect_error', reject)
    })
    this.socket.connect()
    await connected
  }

  /** Pages through a change-log sync until `hasMore` is false; returns the pages of this sync. */
  async sync(options: SyncOptions = {}): Promise<ChangesPage[]> {
    const pages: ChangesPage[] = []
    let request: Record<string, unknown> = { deviceId: this.deviceId, ...options }
    for (let i = 0; i < 1000; i++) {
      const reply = (await this.socket.emitWithAck('sync:request', request)) as Reply
      if (!reply.ok) throw new Error(`sync refused: ${JSON.stringify(reply)}`)
      const page = this.pages.at(-1)
      if (!page) throw new Error('no sync:response before the ack')
      pages.push(page)
      for (const change of page.changes) this.apply(change)
      this.cursor = page.cursor
      if (!page.hasMore) return pages
      request = { ...request, lastSyncTimestamp: page.cursor }
    }
    throw new Error('sync did not end')
  }

  /**
   * Sends one change-log `sync:request` (no paging) and returns its ack and the
   * page it produced, if any; the page's changes are applied.
   */
  async syncPage(request: SyncOptions & { requestId?: string } = {}): Promise<{ reply: Reply; page: ChangesPage | undefined }> {
    const before = this.pages.length
    const reply = (await this.socket.emitWithAck('sync:request', { deviceId: this.deviceId, ...request })) as Reply
    const page = this.pages.length > before ? this.pages.at(-1) : undefined
    if (page) {
      for (const change of page.changes) this.apply(change)
      this.cursor = page.cursor
    }
    return { reply, page }
  }

  /** Asks for `sync:status` and returns what the server emitted before its ack. */
  async status(payload: unknown = { deviceId: this.deviceId }): Promise<StatusPayload> {
    let status: StatusPayload | undefined
    const listener = (s: StatusPayload) => (status = s)
    this.socket.once('sync:status', listener)
    const reply = (await this.socket.emitWithAck('sync:status', payload)) as Reply
    this.socket.off('sync:status', listener)
    if (!reply.ok) throw new Error(`status refused: ${JSON.stringify(reply)}`)
    if (!status) throw new Error('no sync:status before the ack')
    return status
  }

  /** A round trip: everything the server sent this socket before it is received. */
  async barrier(): Promise<void> {
    await this.status()
  }

  async pause(): Promise<void> {
    const reply = (await this.socket.emitWithAck('sync:pause', {})) as Reply
    if (!reply.ok) throw new Error(`pause refused: ${JSON.stringify(reply)}`)
  }

  /** Resumes; returns the pages sent for what this socket missed (applied) and the `sync:complete`. */
  async resume(): Promise<{ pages: ChangesPage[]; complete: SyncComplete | undefined }> {
    const firstPage = this.pages.length
    const firstMessage = this.messages.length
    const reply = (await this.socket.emitWithAck('sync:resume', {})) as Reply
    if (!reply.ok) throw new Error(`resume refused: ${JSON.stringify(reply)}`)
    const pages = this.pages.slice(firstPage)
    for (const page of pages) for (const change of page.changes) this.apply(change)
    const complete = this.messages.slice(firstMessage).find((m) => m.event === 'sync:complete')?.payload as SyncComplete | undefined
    if (complete?.cursor !== undefined) this.cursor = complete.cursor
    return { pages, complete }
  }

  /** Live entities (not deleted) as `type:id` → `{ version, data }`, for comparing devices. */
  liveEntities(): Map<string, { version: number; data: Record<string, unknown> }> {
    const live = new Map<string, { version: number; data: Record<string, unknown> }>()
    for (const [key, e] of this.entities) if (!e.deleted) live.set(key, { version: e.version, data: e.data })
    return live
  }

  apply(change: SyncChange): void {
    const key = `${change.entityType}:${change.entityId}`
    const known = this.entities.get(key)
    if (known && known.version > change.version) return
    this.entities.set(key, {
      version: change.version,
      timestamp: change.timestamp,
      deleted: change.operationType === SyncOperationType.DELETE,
      data: change.data,
    })
  }

  entity(type: string, id: string): EntityState | undefined {
    return this.entities.get(`${type}:${id}`)
  }

  send(
    operation: 'create' | 'update' | 'delete',
    change: { entityType: string; entityId: string; data?: Record<string, unknown>; version?: number; id?: string },
  ): Promise<Reply> {
    const event = { create: 'sync:entity_created', update: 'sync:entity_updated', delete: 'sync:entity_deleted' }[operation]
    return this.socket.emitWithAck(event, {
      id: change.id ?? `${this.deviceId}-${++changeCounter}`,
      userId: undefined,
      deviceId: this.deviceId,
      entityType: change.entityType,
      entityId: change.entityId,
      operationType: operation,
      data: change.data ?? {},
      timestamp: Date.now(),
      version: change.version ?? this.entity(change.entityType, change.entityId)?.version ?? 0,
    }) as Promise<Reply>
  }

  /** Sends and throws unless acknowledged ok; returns the ack. */
  async write(...args: Parameters<JsonDevice['send']>): Promise<Extract<Reply, { ok: true }>> {
    const reply = await this.send(...args)
    if (!reply.ok) throw new Error(`change refused: ${JSON.stringify(reply)}`)
    return reply
  }

  close(): void {
    this.socket.disconnect()
  }
}

/**
 * Makes `edit` on a Yjs device's document in one transaction (so one update,
 * one commit) and returns the server's ack of that update.
 */
export async function yjsWrite(device: YjsDevice, edit: (doc: Y.Doc) => void): Promise<Extract<Reply, { ok: true }>> {
  const ack = device.write(() => edit(device.doc))
  if (!ack) throw new Error('the edit sent no update')
  const reply = await ack
  if (!reply.ok) throw new Error(`update refused: ${JSON.stringify(reply)}`)
  return reply
}
