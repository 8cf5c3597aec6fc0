/**
 * `buildApp(config)`: the Fastify app with Socket.IO on its HTTP server and the
 * store open, not yet listening (tests listen on port 0). Closing the app
 * refuses new updates, finishes and acknowledges every accepted one,
 * disconnects every socket, unloads the documents and closes the store
 * (LevelDB, or PostgreSQL's pool and lock), in that order.
 */
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { registerAdminRoutes } from './controllers/admin.controller.js'
import { registerAppRoutes } from './controllers/app.controller.js'
import { registerConsoleRoutes } from './controllers/console.controller.js'
import { registerHealthRoutes } from './controllers/health.controller.js'
import { registerErrorHandling } from './controllers/http-errors.js'
import { registerSyncRoutes } from './controllers/sync.controller.js'
import { registerOperatorRoutes } from './controllers/operator.controller.js'
import fastifySwagger from '@fastify/swagger'
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod'
import { openDocumentStore } from './repositories/open-store.js'
import { createServices } from './services/index.js'
import type { Services } from './services/index.js'
import type { ServerConfig } from './types/config.js'
import { DEFAULT_REDIS_KEY_PREFIX } from './config.js'
import { EventLoopMonitor } from './utils/event-loop-monitor.js'
import { Metrics } from './utils/metrics.js'
import { Registry } from 'prom-client'
import { createSocketServer } from './websockets/server.js'
import { ClusterLink } from './websockets/cluster-link.js'
import { answerForwarded, ownerRouting, type OwnerRouting } from './controllers/owner-routing.js'
import type { SyncServer } from './websockets/types.js'

export interface SyncApp {
  app: FastifyInstance
  io: SyncServer
  services: Services
}

const APP_VERSION = '0.1.0'

/** How long a shutdown waits for clients to take their last acks and close. */
const CLOSE_WAIT_MS = 3000

/** Resolves once every engine.io connection has closed (their buffered writes flushed), or after `ms`. */
async function connectionsClosed(io: SyncServer, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (io.engine.clientsCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
}

/** The cluster's Redis link; the store is closed if Redis cannot be reached at start. */
async function openLink(url: string, keyPrefix: string | undefined, log: SyncApp['app']['log'], store: { close(): Promise<void> }): Promise<ClusterLink> {
  try {
    return await ClusterLink.open(url, keyPrefix ?? DEFAULT_REDIS_KEY_PREFIX, log)
  } catch (err) {
    await store.close()
    throw err
  }
}

export async function buildApp(config: ServerConfig): Promise<SyncApp> {
  // Request bodies up to the largest message a socket may send (a batch of changes, later an imported snapshot).
  const app = Fastify({ logger: { level: config.logLevel }, forceCloseConnections: true, bodyLimit: config.maxMessageBytes })
  // Route schemas are zod: requests validated and replies serialized by them, the OpenAPI document generated from them.
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'SuperClip Sync', version: APP_VERSION, description: 'HTTP sync and operator API (docs/protocol.md)' },
      components: {
        securitySchemes: {
          deviceToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A device token (npm run token)' },
          adminToken: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN' },
        },
      },
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  })
  // This server's own registry (not prom-client's global one: tests run several servers in one process).
  const metrics = new Metrics(new Registry()).collectDefaults()
  let routing: OwnerRouting | undefined
  registerErrorHandling(app, metrics, () => routing)
  const store = await openDocumentStore(config, app.log)
  // Cluster mode (DATABASE_URL and REDIS_URL): the nodes' Socket.IO servers are joined through Redis.
  const link = store.leases && config.redisUrl ? await openLink(config.redisUrl, config.redisKeyPrefix, app.log, store) : undefined
  let open = true
  const services = createServices(store.repo, config, app.log, metrics, store.leases)
  const sockets = createSocketServer(app.server, services, { ...config, cluster: store.leases !== undefined }, app.log, metrics)
  const { io, router } = sockets
  if (link) {
    link.attach(io, config.nodeId ?? '', (request) => answerForwarded((options) => app.inject(options), request))
    routing = ownerRouting((request) => link.forward(io, request))
    services.sync.refuseWritesUnless(() => link.reachable)
  }
  registerHealthRoutes(app, () => open, { nodeId: config.nodeId, store, redis: link })
  registerConsoleRoutes(app)
  registerAppRoutes(app)
  registerSyncRoutes(app, { services, limiter: sockets.limiter, jwtSecret: config.jwtSecret, log: app.log, metrics })
  registerOperatorRoutes(app, config.adminToken, services.operators)
  const eventLoop = new EventLoopMonitor()
  eventLoop.start()
  metrics.readGaugesFrom({ connections: () => io.engine.clientsCount, documentsLoaded: () => services.registry.loadedCount, eventLoop, leases: store.leases })
  registerAdminRoutes(app, config.adminToken, { metrics, eventLoop })

  app.addHook('preClose', async () => {
    open = false
    // Refuse new updates, let every accepted one be stored and acknowledged, and only then
    // disconnect: engine.io flushes a socket's buffered acks before closing it.
    // Queued events of a capped user are answered as fast as they can be: the wait below is for them too.
    sockets.releaseCaps()
    await services.drain()
    await router.idle()
    sockets.closeConnections()
    await connectionsClosed(io, CLOSE_WAIT_MS)
    io.engine.close()
  })
  app.addHook('onClose', async () => {
    eventLoop.stop()
    await services.close()
    await store.close()
    await io.close() // the HTTP server is already closed: this only releases the adapter
    await link?.close()
  })
  return { app, io, services }
}
