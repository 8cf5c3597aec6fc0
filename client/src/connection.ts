/**
 * One Socket.IO connection to the server, kept up: a new socket per attempt
 * (so a `moved` refusal can point the next one elsewhere), with the delays of
 * `Backoff` between attempts and the server's hints honoured: `retryAfterMs`
 * of a refused handshake, and of a `shutdown` or `abuse` notice before the
 * server closes the connection (docs/protocol.md, handshake and limits).
 *
 * A `moved` refusal points the next attempts at the user's owner; when that
 * node cannot be reached, they go back to the configured URL.
 *
 * Refusals that cannot succeed by waiting stop it: a revoked device, a bad
 * device id, and an invalid or expired token that is a fixed string (a token
 * function is asked again at each attempt).
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from 'socket.io-client'
import { singleFrameParser, WIRE_SINGLE_FRAME } from './wire.js'
import { Backoff, type BackoffOptions } from './backoff.js'
import { SyncClientError } from './errors.js'
import { EVENTS, retryHint, type ErrorNotice } from './protocol.js'

export type TokenSource = string | (() => string | Promise<string>)

export interface ConnectionOptions {
  url: string
  token: TokenSource
  deviceId: string
  backoff?: BackoffOptions
  /** Passed to socket.io-client's `io()` (e.g. `transports`, `path`). */
  socketOptions?: Partial<ManagerOptions & SocketOptions>
}

export interface ConnectionEvents {
  /** An attempt starts. */
  connecting(): void
  /** A socket is connected: sync on it. */
  connected(socket: Socket): void
  /** The socket is gone (an attempt may be scheduled). */
  disconnected(): void
  /** A refusal or a notice. `fatal`: no more attempts until `restart()`. */
  failed(error: SyncClientError, fatal: boolean): void
}

/** Consecutive `moved` redirects followed at once; past them, the backoff applies. */
const MAX_QUICK_MOVES = 5

export class Connection {
  socket: Socket | undefined
  url: string
  /** The token source of the next attempts. */
  token: TokenSource
  private readonly backoff: Backoff
  private timer: ReturnType<typeof setTimeout> | undefined
  /** `retryAfterMs` of the last notice on this socket (shutdown, abuse). */
  private hint: number | undefined
  private tokenExpired = false
  private moves = 0
  private handshaking = false
  /**
   * `idle`: not asked to connect (before `start()`, after `suspend()`); `offline`: asked to, but the
   * browser is offline (until `retryNow()`); `stopped`: a refusal waiting cannot fix.
   */
  private state: 'idle' | 'running' | 'offline' | 'stopped' | 'closed' = 'idle'

  constructor(
    private readonly options: ConnectionOptions,
    private readonly on: ConnectionEvents,
  ) {
    this.url = options.url
    this.token = options.token
    this.backoff = new Backoff(options.backoff)
  }

  /** Connects now unless connected or connecting (after a fatal refusal too); `offline`: once `retryNow()` says the network is back. */
  start(offline = false): void {
    if (this.state === 'closed') return
    this.state = offline ? 'offline' : 'running'
    if (!offline && !this.busy) this.attempt()
  }

  /** The network is back (the browser's `online`): connects now if it was waiting for that. */
  retryNow(): void {
    if (this.state === 'offline') this.start()
  }

  /** The network is gone (the browser's `offline`): no attempt until `retryNow()`. */
  networkLost(): void {
    if (this.state !== 'running') return
    this.state = 'offline'
    this.drop()
    this.on.disconnected()
  }

  /** A socket is connected or its handshake under way. */
  private get busy(): boolean {
    return this.socket !== undefined && (this.socket.connected || this.handshaking)
  }

  /** No connection until `start()` (the app's `disconnect()`). */
  suspend(): void {
    if (this.state === 'closed') return
    this.state = 'idle'
    this.drop()
    this.on.disconnected()
  }

  /** A sync completed: the backoff and the redirect count start over. */
  succeeded(): void {
    this.backoff.reset()
    this.moves = 0
  }

  close(): void {
    this.state = 'closed'
    this.drop()
  }

  private drop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const socket = this.socket
    this.socket = undefined
    this.handshaking = false
    socket?.removeAllListeners()
    socket?.close()
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer)
    this.on.disconnected()
    this.timer = setTimeout(() => this.attempt(), delayMs)
  }

  private stop(error: SyncClientError): void {
    this.state = 'stopped'
    this.drop()
    this.on.failed(error, true)
    this.on.disconnected()
  }

  private attempt(): void {
    if (this.state !== 'running') return
    this.drop()
    this.hint = undefined
    this.tokenExpired = false
    const { deviceId, socketOptions } = this.options
    const token = this.token
    // Binary packets (updates, state vectors) as one message each instead of two or more (wire.ts), unless
    // `socketOptions` brings a parser of its own: then the server is not asked for them either.
    const parser: unknown = socketOptions?.parser ?? singleFrameParser
    const wire = parser === singleFrameParser ? { wire: WIRE_SINGLE_FRAME } : {}
    const socket = io(this.url, {
      transports: ['websocket'],
      parser,
      ...socketOptions,
      forceNew: true,
      reconnection: false,
      auth: (cb: (data: object) => void) => {
        Promise.resolve(typeof token === 'function' ? token() : token).then(
          (t) => cb({ token: t, deviceId, ...wire }),
          () => cb({ deviceId, ...wire }),
        )
      },
    })
    this.socket = socket
    this.handshaking = true
    this.on.connecting()
    socket.on('connect', () => {
      this.handshaking = false
      this.on.connected(socket)
    })
    socket.on('connect_error', (err: Error & { data?: { code?: string; message?: string; url?: string; retryAfterMs?: number } }) => {
      this.handshaking = false
      this.refused(err)
    })
    socket.on(EVENTS.error, (notice: ErrorNotice) => {
      if (notice.event === 'shutdown' || notice.event === 'abuse' || notice.event === 'connect') this.hint = retryHint(notice)
      if (notice.event === 'auth') this.tokenExpired = true
      if (notice.event === 'abuse' || notice.event === 'auth' || notice.event === 'connect') {
        this.on.failed(SyncClientError.from(notice), false)
      }
    })
    socket.on('disconnect', (reason: string) => {
      if (reason === 'io client disconnect' || this.socket !== socket) return
      if (this.tokenExpired && typeof token === 'string') {
        this.stop(new SyncClientError('UNAUTHORIZED', 'token expired: give the client a new one with setToken()'))
        return
      }
      this.schedule(this.backoff.next(this.hint))
    })
  }

  private refused(err: Error & { data?: { code?: string; message?: string; url?: string; retryAfterMs?: number } }): void {
    const data = err.data
    const error = new SyncClientError(data?.code ?? 'UNAVAILABLE', data?.message ?? `cannot connect to ${this.url}: ${err.message}`)
    switch (err.message) {
      case 'moved':
        if (typeof data?.url === 'string') {
          this.url = data.url
          this.moves += 1
          if (this.moves <= MAX_QUICK_MOVES) return void queueMicrotask(() => this.attempt())
        }
        return this.schedule(this.backoff.next())
      case 'unauthorized':
        if (data?.code === 'REVOKED' || typeof this.token === 'string') return this.stop(error)
        this.on.failed(error, false)
        return this.schedule(this.backoff.next())
      case 'bad_request':
        return this.stop(error)
      case 'rate_limited':
      case 'unavailable':
      case 'quota_exceeded':
        this.on.failed(error, false)
        return this.schedule(this.backoff.next(retryHint(data)))
      default:
        // The network: refused, reset, timed out. The server is away; try again later. A node a
        // `moved` pointed to may be gone for good (its leases expire and another node takes its
        // users over): the next attempt goes to the configured URL again, which redirects anew.
        this.url = this.options.url
        return this.schedule(this.backoff.next())
    }
  }
}
