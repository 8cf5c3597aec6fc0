/** Socket.IO on the Fastify HTTP server (PROTOCOL section 1). */
import type { Server as HttpServer } from 'node:http'
import { Server } from 'socket.io'
import type { Services } from '../services/index.js'
import type { ServerConfig } from '../types/config.js'
import type { Logger } from '../utils/logger.js'
import { EventRouter } from './event-router.js'
import { registerSyncHandlers } from './handlers/sync.handler.js'
import { createAuthMiddleware, scheduleTokenExpiry } from './middleware/auth.middleware.js'
import { ConnectionTracker, createPlanMiddleware } from './middleware/plan.middleware.js'
import type { SyncServer } from './types.js'
import { userRoom } from './types.js'

export function createSocketServer(
  httpServer: HttpServer,
  services: Services,
  config: Pick<ServerConfig, 'jwtSecret' | 'maxMessageBytes' | 'compressThresholdBytes' | 'plans'>,
  log: Logger,
): { io: SyncServer; router: EventRouter } {
  const router = new EventRouter(log)
  const io: SyncServer = new Server(httpServer, {
    // Initial syncs of large documents travel in one message each way (1 MB is the default).
    maxHttpBufferSize: config.maxMessageBytes,
    // Compressing every small message cut the echo rate from ~20k/s to ~3k/s here: only large frames.
    // ws honours `threshold` only with server_no_context_takeover (ws/lib/sender.js); without it every
    // frame, 5-byte acks included, is deflated, which cost 5x throughput at 10 devices (npm run bench).
    perMessageDeflate: { threshold: config.compressThresholdBytes, serverNoContextTakeover: true },
    httpCompression: { threshold: config.compressThresholdBytes },
    serveClient: false,
  })
  io.use(createAuthMiddleware(config.jwtSecret, log))
  // Devices and connections per user (plan limits): refused at connect.
  io.use(createPlanMiddleware(config.plans, new ConnectionTracker(), log))
  // A document whose commit failed is reloaded from disk: its sockets reconnect and re-sync.
  // Deferred a turn so that the failed events' error replies go out first.
  services.registry.onEvict((userId) => {
    setImmediate(() => io.in(userRoom(userId)).disconnectSockets(true))
  })
  io.on('connection', (socket) => {
    void socket.join(userRoom(socket.data.userId))
    registerSyncHandlers(socket, io, services, router)
    // At the token's `exp` a silent socket is told and disconnected; events after it are refused by the router.
    scheduleTokenExpiry(socket, log)
  })
  return { io, router }
}
