/** Socket.IO on the Fastify HTTP server (protocol §1). */
import type { Server as HttpServer } from 'node:http'
import { Server, type ExtendedError } from 'socket.io'
import type { Services } from '../services/index.js'
import type { ServerConfig } from '../types/config.js'
import { SyncEventType } from '../types/sync.js'
import { ErrorCode } from '../utils/errors.js'
import type { Logger } from '../utils/logger.js'
import type { Metrics } from '../utils/metrics.js'
import { jittered, RESTART_RETRY_MS } from '../utils/retry.js'
import { AbuseMonitor } from './abuse-monitor.js'
import { EventLimiter } from './event-limiter.js'
import { EventRouter } from './event-router.js'
import { registerSyncHandlers } from './handlers/sync.handler.js'
import { FairScheduler } from './fair-scheduler.js'
import { HeavyUserThrottle } from './heavy-user-throttle.js'
import { RefusalTarpit } from './refusal-tarpit.js'
import { RelayBatcher } from './relay-batcher.js'
import { dualParser } from './single-frame.js'
import { SocketConnections, SocketFeed } from './socket-feed.js'
import { createRevocationMiddleware } from './middleware/revocation.middleware.js'
import { attachRuntime, SyncRuntime } from './sync-runtime.js'
import { holdWrites } from './write-coalescer.js'
import { paceRead } from './read-pacer.js'
import { createAuthMiddleware, scheduleTokenExpiry } from './middleware/auth.middleware.js'
import { ConnectionGuard } from './middleware/connection-guard.middleware.js'
import { ConnectionTracker, createPlanMiddleware } from './middleware/plan.middleware.js'
import { OwnershipGate } from './middleware/ownership.middleware.js'
import type { SyncServer, SyncSocket } from './types.js'
import { userRoom } from './types.js'

/** The `event` of the `sync:error` each socket gets when the server shuts down. */
export const SHUTDOWN_EVENT = 'shutdown'

export interface SocketServer {
  io: SyncServer
  router: EventRouter
  /** The rate limits, which HTTP sync requests draw on too. */
  limiter: EventLimiter
  /**
   * Shutdown, once every accepted event is answered: refuses new handshakes,
   * tells every socket `sync:error` `{ code: 'UNAVAILABLE', event: 'shutdown',
   * retryAfterMs }` (jittered) and closes its connection. The client sees a
   * transport close, not a server disconnect, so it reconnects by itself,
   * with its own backoff, once the server is back.
   */
  closeConnections(): void
  /** Shutdown, before waiting for the accepted events: no user stays capped, so their queues drain at once. */
  releaseCaps(): void
}

type Middleware = (socket: SyncSocket, next: (err?: ExtendedError) => void) => void

/** A refused handshake's code: the `data.code` of `handshakeRefusal` (reply.ts), INTERNAL for anything else. */
function refusalCode(err: ExtendedError): string {
  const code = (err.data as { code?: unknown } | undefined)?.code
  return typeof code === 'string' ? code : ErrorCode.INTERNAL
}

/**
 * Bytes the server sends, one engine.io packet at a time as it is created
 * (`packetCreate`: once per recipient connection, broadcasts included): a
 * text packet is its type byte and the socket.io message (UTF-8), a binary
 * attachment its size. That is each WebSocket frame's payload, counted
 * without encoding anything or allocating. Not counted: WebSocket framing
 * (2-14 bytes a frame), what permessage-deflate saves on frames over
 * COMPRESS_THRESHOLD_BYTES, and long-polling's base64 and separators.
 */
function packetBytes(packet: { data?: unknown }): number {
  const { data } = packet
  if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) return data.byteLength
  return 1 + (typeof data === 'string' ? Buffer.byteLength(data) : 0)
}

export function createSocketServer(
  httpServer: HttpServer,
  services: Services,
  config: Pick<ServerConfig, 'jwtSecret' | 'maxMessageBytes' | 'compressThresholdBytes' | 'plans' | 'limits'> & {
    /** Cluster mode: a user's sockets are accepted only by the node owning the user (`moved` otherwise). */
    cluster?: boolean
  },
  log: Logger,
  metrics: Metrics,
): SocketServer {
  const abuse = new AbuseMonitor(config.limits, log, metrics)
  const guard = new ConnectionGuard(config.limits, log)
  const limiter = new EventLimiter(config.plans, config.limits)
  const scheduler = new FairScheduler(config.plans, config.limits.slice, metrics, {
    writesOf: (userId) => services.registry.peek(userId)?.pendingWrites ?? 0,
    allWrites: () => services.pendingWrites(),
    throttle: new HeavyUserThrottle(config.limits.throttle),
  })
  const router = new EventRouter(log, limiter, abuse, metrics, scheduler)
  const io: SyncServer = new Server(httpServer, {
    // Initial syncs of large documents travel in one message each way (1 MB is the default).
    maxHttpBufferSize: config.maxMessageBytes,
    // Compressing every small message cut the echo rate from ~20k/s to ~3k/s here: only large frames.
    // ws honours `threshold` only with server_no_context_takeover (ws/lib/sender.js); without it every
    // frame, 5-byte acks included, is deflated, which cost 5x throughput at 10 devices (npm run bench).
    perMessageDeflate: { threshold: config.compressThresholdBytes, serverNoContextTakeover: true },
    httpCompression: { threshold: config.compressThresholdBytes },
    serveClient: false,
    // Reads binary packets in one message as well as Socket.IO's default form (single-frame.ts).
    parser: dualParser,
  })
  const tarpit = new RefusalTarpit(config.limits.refusalHold)
  // Every handshake a middleware refuses is counted by its code (the `connect_error`'s `data.code`).
  const use = (middleware: Middleware): void => {
    io.use((socket, next) =>
      middleware(socket, (err) => {
        if (!err) return next()
        metrics.handshakeRefusals.inc({ code: refusalCode(err) })
        // A refusal that says "wait" is answered after the wait (refusal-tarpit.ts).
        tarpit.answer(err, next)
      }),
    )
  }
  // Shutdown and per-address limits first: a refused handshake costs no token verification.
  use(guard.middleware())
  const relays = new RelayBatcher(io)
  // Committed writes, whoever made them, reach the user's live sockets through this feed.
  services.sync.publishTo(new SocketFeed(io, relays))
  services.operators.connectTo(new SocketConnections(io))
  const runtime = new SyncRuntime(services, router)
  attachRuntime(io, runtime)
  use(createAuthMiddleware(config.jwtSecret, log, (address) => guard.authFailed(address)))
  // A user whose socket was disconnected for its refused events waits out the retry hint it was given.
  use(abuse.middleware())
  // A device an operator revoked is refused until unrevoked.
  use(createRevocationMiddleware((userId, deviceId) => services.operators.isRevoked(userId, deviceId), log))
  // Cluster mode: the user's document is loaded under the user's lease, or the socket is refused `moved`
  // to the node that holds it. Before the plan limits: those count only the sockets of the owner.
  const ownership = config.cluster ? new OwnershipGate((userId) => services.sync.openDocument(userId), log) : undefined
  if (ownership) use(ownership.middleware())
  // Devices and connections per user (plan limits): refused at connect.
  use(createPlanMiddleware(config.plans, new ConnectionTracker(), log))
  // A document whose commit failed is reloaded from disk: its sockets reconnect and re-sync.
  // Deferred a turn so that the failed events' error replies go out first.
  services.registry.onEvict((userId) => {
    setImmediate(() => io.local.in(userRoom(userId)).disconnectSockets(true))
  })
  io.on('connection', (socket) => {
    // Every packet the connection sends in a turn (acks, relays, errors, broadcasts) leaves in one write.
    socket.conn.on('packetCreate', (packet: { data?: unknown }) => {
      holdWrites(socket)
      metrics.sentBytes += packetBytes(packet)
    })
    // One slice of packets per connection per turn is read; the rest waits for the next turn.
    socket.conn.on('packet', () => paceRead(socket, config.limits.slice.events))
    const owned = ownership?.take(socket)
    if (owned) runtime.adopt(socket, owned)
    void socket.join(userRoom(socket.data.userId))
    registerSyncHandlers(io, socket)
    // At the token's `exp` a silent socket is told and disconnected; events after it are refused by the router.
    scheduleTokenExpiry(socket, log)
  })
  const closeConnections = (): void => {
    guard.close()
    // Relays of the last commits are sent at the end of the turn: before the connections close, not after.
    relays.flush()
    for (const socket of io.of('/').sockets.values()) {
      socket.emit(SyncEventType.SYNC_ERROR, {
        code: ErrorCode.UNAVAILABLE,
        message: 'the server is shutting down; connect again',
        event: SHUTDOWN_EVENT,
        retryAfterMs: jittered(RESTART_RETRY_MS),
      })
      socket.conn.close()
    }
  }
  return { io, router, limiter, closeConnections, releaseCaps: () => scheduler.release() }
}
