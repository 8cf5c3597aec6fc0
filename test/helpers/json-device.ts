/**
 * A JSON device as a client that does not speak Yjs would be one (PROTOCOL
 * section 5): it pages through a change-log sync, keeps each entity's latest
 * state, applies live `sync:entity_*` records, and sends change records.
 */
import { io, type Socket } from 'socket.io-client'
import type { SyncChange, SyncConflict } from '../../src/types/sync.js'

export type Reply = { ok: true; [k: string]: unknown } | { ok: false; error: { code: string; message: string } }

export interface ChangesPage {
  mode: 'changes'
  changes: SyncChange[]
  hasMore: boolean
  cursor: number
  serverTimestamp: number
}

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
  cursor: number | undefined

  constructor(
    url: string,
    readonly token: string,
    readonly deviceId: string,
  ) {
    this.socket = io(url, { auth: { token, deviceId }, transports: ['websocket'], reconnection: false, autoConnect: false })
    this.socket.onAny((event: string) => this.events.push(event))
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

  apply(change: SyncChange): void {
    const key = `${change.entityType}:${change.entityId}`
    const known = this.entities.get(key)
    if (known && known.version > change.version) return
    this.entities.set(key, {
      version: change.version,
      timestamp: change.timestamp,
      deleted: change.operation === 'delete',
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
      operation,
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
