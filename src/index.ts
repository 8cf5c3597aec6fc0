/**
 * `npm start`: configuration from the environment, the store (LevelDB under
 * DATA_DIR, or PostgreSQL with DATABASE_URL),
 * Fastify + Socket.IO on HOST:PORT. SIGINT/SIGTERM stop accepting, finish
 * in-flight writes, close the store and exit 0.
 */
import { buildApp } from './app.js'
import { ConfigError, loadConfig } from './config.js'
import { StoreLockedError } from './utils/errors.js'

async function main(): Promise<void> {
  const config = await loadConfig()
  const { app } = await buildApp(config)
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) return
    stopping = true
    app.log.info({ signal }, 'shutting down: finishing pending writes')
    app.close().then(
      () => process.exit(0),
      (err: unknown) => {
        app.log.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGINT', () => stop('SIGINT'))
  process.on('SIGTERM', () => stop('SIGTERM'))
  const address = await app.listen({ host: config.host, port: config.port })
  app.log.info(
    { address, dataDir: config.dataDir, store: config.databaseUrl ? 'postgresql' : 'leveldb' },
    `SuperClip Sync listening on ${address}; get a device token with: npm run token -- <userId> [--plan pro]`,
  )
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof StoreLockedError) {
    console.error(`superclip-sync: ${err.message}`)
  } else {
    console.error('superclip-sync: failed to start:', err)
  }
  process.exit(1)
})
