/**
 * Hocuspocus 2.15.3 for `npm run bench:peers`: `@hocuspocus/server` with its
 * default settings (stores debounced 2 s, at most 10 s; a document stored and
 * unloaded when its last connection closes; stop on SIGTERM), persisting
 * through `@hocuspocus/extension-database` to a `level` database: `fetch`
 * reads the document's stored state, `store` writes the whole state it is
 * given. The packages are loaded from BENCH_PEERS_DIR/node_modules (installed
 * by the benchmark); nothing of Hocuspocus is copied here.
 *
 * Environment: BENCH_PEERS_DIR, HOST, PORT, DB_DIR. Prints `listening <port>`
 * once it accepts connections.
 */
import { createRequire } from 'node:module'
import path from 'node:path'
import process from 'node:process'

const peersDir = process.env.BENCH_PEERS_DIR
const dbDir = process.env.DB_DIR
if (!peersDir || !dbDir) {
  process.stderr.write('hocuspocus-server: BENCH_PEERS_DIR and DB_DIR must be set\n')
  process.exit(2)
}
const require = createRequire(path.join(peersDir, 'package.json'))
const { Hocuspocus } = require('@hocuspocus/server')
const { Database } = require('@hocuspocus/extension-database')
const { Level } = require('level')

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 1234)

const db = new Level(dbDir, { keyEncoding: 'utf8', valueEncoding: 'view' })
await db.open()

const server = new Hocuspocus({
  address: host,
  port,
  quiet: true,
  extensions: [
    new Database({
      fetch: async ({ documentName }) => (await db.get(documentName)) ?? null,
      store: async ({ documentName, state }) => {
        await db.put(documentName, state)
      },
    }),
  ],
})
await server.listen()
process.stdout.write(`listening ${port}\n`)
