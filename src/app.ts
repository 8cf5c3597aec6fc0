/**
 * `buildApp(config)`: the Fastify app with Socket.IO on its HTTP server and the
 * store open, not yet listening (tests listen on port 0). Closing the app
 * disconnects every socket, finishes every pending write, unloads the documents
 * and closes LevelDB, in that order.
 */
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { registerHealthRoutes } from './controllers/health.controller.js'
import { openStore } from './repositories/level-store.js'
import { createServices } from './services/index.js'
import type { Services } from './services/index.js'
import type { ServerConfig } from './types/config.js'
import { createSocketServer } from './websockets/server.js'
import type { SyncServer } from './websockets/types.js'

export interface SyncApp {
  app: FastifyInstance
  io: SyncServer
  services: Services
}

export async function buildApp(config: ServerConfig): Promise<SyncApp> {
  const app = Fastify({ logger: { level: config.logLevel }, forceCloseConnections: true })
  const store = await openStore(config.dataDir)
  let open = true
  const services = createServices(store, config, app.log)
  const io = createSocketServer(app.server, services, config, app.log)
  registerHealthRoutes(app, () => open)

  app.addHook('preClose', (done) => {
    open = false
    // Stop taking events first, so the drain below is final.
    io.local.disconnectSockets(true)
    io.engine.close()
    done()
  })
  app.addHook('onClose', async () => {
    await services.close()
    await store.close()
    await io.close() // the HTTP server is already closed: this only releases the adapter
  })
  return { app, io, services }
}
