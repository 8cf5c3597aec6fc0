/**
 * `SyncClient`: one device of one user, offline-first. It keeps the user's
 * `Y.Doc` in a local store, syncs it with the server by state vectors on
 * every (re)connect (encoding its own diff before applying the server's,
 * docs/protocol.md "Yjs devices"), sends local edits as they happen (one
 * `sync:update` per tick, at most `MAX_IN_FLIGHT` unacknowledged), counts
 * them as pending until the server acknowledges them (durable there), and
 * surfaces the server's conflicts with a `resolve()`.
 */
import { ObservableV2 } from 'lib0/observable'
import type { Socket } from 'socket.io-client'
import * as Y from 'yjs'
import type { BackoffOptions } from './backoff.js'
import { Collection } from './collection.js'
import { type Conflict, Conflicts } from './conflicts.js'
import { Connection, type TokenSource } from './connection.js'
import type { ClipFields, FolderFields, SetFields, SettingFields, TagFields, TemplateFields } from './entities.js'
import { SyncClientError } from './errors.js'
import { newId } from './ids.js'
import { Outbox, type OutboxCounters } from './outbox.js'
import { bytes, type ConflictRecord, EVENTS, type Relay, type Reply, retryHint, type YjsResponse } from './protocol.js'
import { DELETED, ENTITY_SPECS, ENTITY_TYPES, type EntityType } from './schema.js'
import { type LocalStore, openStore, type StorageOption } from './storage/store.js'

export type SyncStatus = 'offline' | 'connecting' | 'syncing' | 'synced'

export interface SyncClientOptions {
  /** The server (or any node of a cluster: `moved` redirects are followed). */
  url: string
  /** The device's JWT, or a function giving a fresh one at each connection attempt. */
  token: TokenSource
  /** Stable across app runs: 1–128 characters of `[A-Za-z0-9._:-]`. */
  deviceId: string
  /** Where the document is kept between runs (default `'memory'`). */
  storage?: StorageOption
  /** Reconnect delays (default: 500 ms doubling to 30 s, with jitter). */
  backoff?: BackoffOptions
  /** Passed to socket.io-client's `io()`. */
  socketOptions?: ConstructorParameters<typeof Connection>[0]['socketOptions']
  /** Connect at once (default true); otherwise call `connect()`. */
  autoConnect?: boolean
}

export interface EntityChange {
  entityType: EntityType
  id: string
  action: 'created' | 'updated' | 'deleted' | 'removed'
}

export interface ChangeEvent {
  changes: EntityChange[]
  /** `local`: made on this device; `remote`: from the server; `storage`: loaded from the local store. */
  origin: 'local' | 'remote' | 'storage'
}

/** Where the initial sync of a connection is. */
export interface SyncProgress {
  phase: 'loading' | 'connecting' | 'requesting' | 'applying' | 'uploading' | 'done'
  /** Bytes of the server's diff (once received). */
  receivedBytes?: number
  /** Bytes of this device's diff (once encoded). */
  sentBytes?: number
}

export interface SyncClientEvents {
  status: (status: SyncStatus) => void
  pending: (pendingChanges: number) => void
  change: (event: ChangeEvent) => void
  conflict: (conflict: Conflict) => void
  error: (error: SyncClientError) => void
  progress: (progress: SyncProgress) => void
}

/** Updates applied from the server. */
const REMOTE = Symbol('superclip-sync:remote')
/** `sync:update`s sent and not yet acknowledged; later edits wait and are merged. */
const MAX_IN_FLIGHT = 8
/** Codes after which the same update would be refused again: the client stops sending until reconnected. */
const RETRYABLE = new Set(['RATE_LIMITED', 'UNAVAILABLE'])
/** The local store's key for the pending-edit counters. */
const OUTBOX = 'outbox'

export class SyncClient extends ObservableV2<SyncClientEvents> {
  /** The user's document (its guid given: Yjs would draw one with lib0's slow UUID). */
  readonly doc = new Y.Doc({ guid: newId() })
  readonly deviceId: string
  readonly clips: Collection<ClipFields>
  readonly folders: Collection<FolderFields>
  readonly sets: Collection<SetFields>
  readonly tags: Collection<TagFields>
  readonly templates: Collection<TemplateFields>
  readonly settings: Collection<SettingFields>
  /** Resolves once the local store is loaded (rejects if it cannot be). */
  readonly ready: Promise<void>

  private _status: SyncStatus = 'offline'
  private _progress: SyncProgress = { phase: 'loading' }
  private store: LocalStore | undefined
  private readonly outbox: Outbox
  private readonly connection: Connection
  private readonly conflictList: Conflicts
  /** The socket whose sync completed: local edits go out on it. */
  private live: Socket | undefined
  private inFlight = 0
  private flushTimer: ReturnType<typeof setTimeout> | undefined
  private resyncTimer: ReturnType<typeof setTimeout> | undefined
  /** A refusal that sending again cannot fix; cleared by the next connection. */
  private refusal: SyncClientError | undefined
  private fatal: SyncClientError | undefined
  private closed = false
  private readonly unlisten: (() => void)[] = []

  constructor(private readonly options: SyncClientOptions) {
    super()
    this.deviceId = options.deviceId
    this.outbox = new Outbox(
      (counters) => this.store?.setMeta(OUTBOX, counters),
      (pending) => this.emit('pending', [pending]),
    )
    this.clips = new Collection(this.doc, ENTITY_SPECS.clip)
    this.folders = new Collection(this.doc, ENTITY_SPECS.folder)
    this.sets = new Collection(this.doc, ENTITY_SPECS.set)
    this.tags = new Collection(this.doc, ENTITY_SPECS.tag)
    this.templates = new Collection(this.doc, ENTITY_SPECS.template)
    this.settings = new Collection(this.doc, ENTITY_SPECS.setting)
    this.conflictList = new Conflicts(
      async (payload) => (await this.connectedSocket()).emitWithAck(EVENTS.conflict, payload) as Promise<Reply>,
      (conflict) => this.emit('conflict', [conflict]),
    )
    this.doc.on('update', (update: Uint8Array, origin: unknown) => this.onDocUpdate(update, origin))
    this.watchChanges()
    this.connection = new Connection(
      { url: options.url, token: options.token, deviceId: options.deviceId, backoff: options.backoff, socketOptions: options.socketOptions },
      {
        connecting: () => {
          this.setStatus('connecting')
          this.setProgress({ phase: 'connecting' })
        },
        connected: (socket) => this.onConnected(socket),
        disconnected: () => this.onDisconnected(),
        failed: (error, fatal) => {
          if (fatal) this.fatal = error
          this.emit('error', [error])
        },
      },
    )
    this.watchNetwork()
    this.ready = this.open()
    this.ready.catch(() => undefined)
  }

  get status(): SyncStatus {
    return this._status
  }

  /** Local edits not yet acknowledged by the server (acknowledged means durable there). */
  get pendingChanges(): number {
    return this.outbox.size
  }

  get progress(): SyncProgress {
    return this._progress
  }

  /** The user's open conflicts, oldest first. */
  get conflicts(): Conflict[] {
    return this.conflictList.list()
  }

  /** The server this client talks to (changes when a `moved` redirect is followed). */
  get url(): string {
    return this.connection.url
  }

  /** The last refusal that stopped sending or connecting, if any. */
  get lastError(): SyncClientError | undefined {
    return this.fatal ?? this.refusal
  }

  /** Drops the connection and stays offline until `connect()`; edits are still stored and counted as pending. */
  disconnect(): void {
    this.connection.suspend()
  }

  /** Connects now, unless connected: after `autoConnect: false`, `disconnect()`, a refused token, or to skip a backoff wait. */
  connect(): void {
    this.fatal = undefined
    void this.ready.then(() => this.connection.start(), () => undefined)
  }

  /** A new token for the next connection; reconnects if the old one was refused. */
  setToken(token: TokenSource): void {
    this.connection.token = token
    if (this.fatal?.code === 'UNAUTHORIZED') this.connect()
  }

  /** Resolves when the status is `synced` and nothing is pending; rejects on a refusal that waiting cannot fix. */
  whenSynced(): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const failure = this.closed ? new SyncClientError('CLOSED', 'the client is closed') : (this.fatal ?? this.refusal)
        if (!failure && !(this._status === 'synced' && this.outbox.size === 0)) return
        this.off('status', check)
        this.off('pending', check)
        this.off('error', check)
        if (failure) reject(failure)
        else resolve()
      }
      this.on('status', check)
      this.on('pending', check)
      this.on('error', check)
      check()
    })
  }

  /** Resolves once every edit so far is in the local store. */
  async whenStored(): Promise<void> {
    await this.ready
    await this.store?.flush()
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const unlisten of this.unlisten) unlisten()
    clearTimeout(this.flushTimer)
    this.cancelResync()
    this.connection.close()
    this.live = undefined
    this.setStatus('offline')
    await this.ready.catch(() => undefined)
    await this.store?.close()
    this.emit('status', [this._status])
  }

  private async open(): Promise<void> {
    try {
      const token = typeof this.options.token === 'function' ? await this.options.token() : this.options.token
      const userId = userOf(token)
      const store = await openStore(this.options.storage ?? 'memory', userId)
      const owner = await store.getMeta('userId')
      if (owner !== undefined && owner !== userId) {
        await store.close()
        throw new SyncClientError('STORAGE', `the local store holds the data of user ${JSON.stringify(owner)}, not of ${userId}`)
      }
      this.store = store
      await store.load(this.doc)
      store.setMeta('userId', userId)
      this.outbox.restore((await store.getMeta(OUTBOX)) as Partial<OutboxCounters> | undefined)
      this.emit('pending', [this.outbox.size])
    } catch (err) {
      const error = err instanceof SyncClientError ? err : new SyncClientError('STORAGE', String(err))
      this.fatal = error
      this.emit('error', [error])
      throw error
    }
    if (this.options.autoConnect === false || this.closed) return
    // A browser that is offline now: no attempt until its `online` event.
    this.connection.start((globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine === false)
  }

  private setStatus(status: SyncStatus): void {
    if (this._status === status) return
    this._status = status
    this.emit('status', [status])
  }

  private setProgress(progress: SyncProgress): void {
    this._progress = progress
    this.emit('progress', [progress])
  }

  private onDocUpdate(update: Uint8Array, origin: unknown): void {
    if (this.closed || origin === REMOTE || (this.store && origin === this.store.origin)) return
    this.outbox.add(update, this.live !== undefined)
    this.scheduleFlush()
  }

  private onConnected(socket: Socket): void {
    this.refusal = undefined
    this.inFlight = 0
    socket.on(EVENTS.response, (response: YjsResponse) => this.onResponse(socket, response))
    socket.on(EVENTS.update, (relay: Relay) => Y.applyUpdate(this.doc, bytes(relay.update), REMOTE))
    socket.on(EVENTS.conflict, (record: ConflictRecord) => this.conflictList.receive(record))
    this.requestSync(socket)
  }

  private onDisconnected(): void {
    this.live = undefined
    this.cancelResync()
    this.setStatus('offline')
  }

  /** A resync is per connection: a new one syncs anyway, and must be free to schedule its own. */
  private cancelResync(): void {
    clearTimeout(this.resyncTimer)
    this.resyncTimer = undefined
  }

  /** `sync:request` with our state vector; the reply comes as `sync:response`. */
  private requestSync(socket: Socket): void {
    this.live = undefined
    this.setStatus('syncing')
    this.setProgress({ phase: 'requesting' })
    socket.emit(EVENTS.request, { deviceId: this.deviceId, stateVector: Y.encodeStateVector(this.doc) }, (reply: Reply) => {
      if (!reply.ok && socket === this.connection.socket) this.refused(socket, SyncClientError.from(reply.error))
    })
  }

  private onResponse(socket: Socket, response: YjsResponse): void {
    if (response.mode !== 'yjs' || socket !== this.connection.socket) return
    const update = bytes(response.update)
    this.setProgress({ phase: 'applying', receivedBytes: update.byteLength })
    // Encode what the server lacks before applying what it sent: applied first, a local write
    // that loses to a concurrent one in Yjs order would be collected and its value never sent.
    const through = this.outbox.coverAll()
    const mine = Y.encodeStateAsUpdate(this.doc, bytes(response.stateVector))
    Y.applyUpdate(this.doc, update, REMOTE)
    this.setProgress({ phase: 'uploading', receivedBytes: update.byteLength, sentBytes: mine.byteLength })
    this.send(socket, mine, (ok) => {
      if (ok) {
        this.outbox.settleThrough(through)
        this.setProgress({ phase: 'done', receivedBytes: update.byteLength, sentBytes: mine.byteLength })
      }
    })
    this.live = socket
    this.connection.succeeded()
    this.setStatus('synced')
    socket.emit(EVENTS.conflicts, {}, (reply: Reply<{ conflicts: ConflictRecord[] }>) => {
      if (reply.ok && Array.isArray(reply.conflicts)) this.conflictList.replace(reply.conflicts)
    })
    this.scheduleFlush()
  }

  private scheduleFlush(): void {
    if (this.flushTimer !== undefined || !this.live) return
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      this.flush()
    }, 0)
  }

  /** Sends the edits made since the last send, merged, while fewer than MAX_IN_FLIGHT wait for acks. */
  private flush(): void {
    const socket = this.live
    if (!socket || this.refusal) return
    if (this.inFlight >= MAX_IN_FLIGHT) return
    const batch = this.outbox.takeUnsent()
    if (batch) this.send(socket, batch.update, (ok) => ok && this.outbox.settle(batch.seqs))
  }

  private send(socket: Socket, update: Uint8Array, done: (ok: boolean) => void): void {
    this.inFlight += 1
    socket.emit(EVENTS.update, { update }, (reply: Reply) => {
      if (socket !== this.connection.socket) return
      this.inFlight -= 1
      if (!reply.ok) this.refused(socket, SyncClientError.from(reply.error))
      done(reply.ok)
      if (this.outbox.hasUnsent) this.scheduleFlush()
    })
  }

  /**
   * A refused request or update. Later updates of this document build on the
   * refused one, so the client syncs again by state vector, after the
   * server's `retryAfterMs` for a rate limit or an unavailable server, at once
   * for missing dependencies. Any other refusal would repeat: sending stops
   * until the next connection, and `whenSynced()` rejects.
   */
  private refused(socket: Socket, error: SyncClientError): void {
    const missing = error.code === 'INVALID_UPDATE' && error.message.startsWith('missing dependencies')
    if (!missing && !RETRYABLE.has(error.code)) {
      this.refusal = error
      this.emit('error', [error])
      return
    }
    if (this.resyncTimer !== undefined) return
    this.live = undefined
    this.setStatus('syncing')
    this.resyncTimer = setTimeout(
      () => {
        this.resyncTimer = undefined
        if (socket === this.connection.socket && socket.connected) this.requestSync(socket)
      },
      missing ? 0 : (retryHint(error) ?? 1000),
    )
  }

  private async connectedSocket(): Promise<Socket> {
    while (!this.live) {
      if (this.closed) throw new SyncClientError('CLOSED', 'the client is closed')
      await new Promise<void>((resolve) => {
        const on = (status: SyncStatus): void => {
          if (status !== 'synced' && !this.closed) return
          this.off('status', on)
          resolve()
        }
        this.on('status', on)
      })
    }
    return this.live
  }

  /** One `change` event per transaction, naming each entity it touched. */
  private watchChanges(): void {
    let changes: EntityChange[] = []
    for (const type of ENTITY_TYPES) {
      const map = this.doc.getMap<Y.Map<unknown>>(ENTITY_SPECS[type].collection)
      map.observeDeep((events) => {
        const seen = new Map<string, EntityChange['action']>()
        for (const event of events) {
          if (event.target === map) {
            for (const [id, change] of event.changes.keys) {
              seen.set(id, change.action === 'delete' ? 'removed' : change.action === 'add' ? 'created' : 'updated')
            }
            continue
          }
          const id = event.path[0]
          if (typeof id !== 'string' || seen.get(id) === 'created') continue
          const deleted = event instanceof Y.YMapEvent ? event.changes.keys.get(DELETED) : undefined
          const now = map.get(id)?.get(DELETED)
          seen.set(id, deleted ? (now === true ? 'deleted' : 'created') : (seen.get(id) ?? 'updated'))
        }
        for (const [id, action] of seen) changes.push({ entityType: type, id, action })
      })
    }
    this.doc.on('afterTransaction', (transaction: Y.Transaction) => {
      if (changes.length === 0) return
      const event: ChangeEvent = {
        changes,
        origin: transaction.origin === REMOTE ? 'remote' : this.store && transaction.origin === this.store.origin ? 'storage' : 'local',
      }
      changes = []
      this.emit('change', [event])
    })
  }

  /** In browsers: drop the connection when the device goes offline, and reconnect at once when it is back. */
  private watchNetwork(): void {
    const target = globalThis as { addEventListener?: (e: string, f: () => void) => void; removeEventListener?: (e: string, f: () => void) => void; navigator?: { onLine?: boolean } }
    if (typeof target.addEventListener !== 'function' || typeof target.removeEventListener !== 'function') return
    const online = (): void => this.connection.retryNow()
    const offline = (): void => this.connection.networkLost()
    target.addEventListener('online', online)
    target.addEventListener('offline', offline)
    this.unlisten.push(() => {
      target.removeEventListener?.('online', online)
      target.removeEventListener?.('offline', offline)
    })
  }
}

/** The user id (`sub`) of a JWT, read without verifying it: the server verifies; the client only names its store. */
function userOf(token: string): string {
  const payload = token.split('.')[1]
  try {
    const json = atob(payload!.replace(/-/g, '+').replace(/_/g, '/'))
    const sub = (JSON.parse(json) as { sub?: unknown }).sub
    if (typeof sub === 'string' && sub.length > 0) return sub
  } catch {
    // fall through
  }
  throw new SyncClientError('UNAUTHORIZED', 'the token is not a JWT with a sub claim')
}
