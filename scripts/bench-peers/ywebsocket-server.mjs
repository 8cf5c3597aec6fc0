/**
 * y-websocket 1.5.4's server for `npm run bench:peers`: what its own
 * `bin/server.js` does (an http server whose upgrades go to `setupWSConnection`
 * of `bin/utils`), with persistence through y-leveldb, which `bin/utils` sets
 * up itself when YPERSISTENCE names a directory. Nothing of y-websocket is
 * copied here: the packages are loaded from BENCH_PEERS_DIR/node_modules
 * (installed by the benchmark), with `ws` resolved as y-websocket's own server
 * resolves it.
 *
 * Environment: BENCH_PEERS_DIR, HOST, PORT, YPERSISTENCE. Prints
 * `listening <port>` once it accepts connections. On SIGTERM it closes the
 * connections, waits for y-leveldb's queued writes and exits 0 (a graceful
 * stop y-websocket itself does not have, so that a restart finds everything
 * that was written); SIGKILL is the crash.
 */
import http from 'node:http'
import { createRequire } from 'node:module'
import path from 'node:path'
import process from 'node:process'

const peersDir = process.env.BENCH_PEERS_DIR
if (!peersDir || !process.env.YPERSISTENCE) {
  process.stderr.write('ywebsocket-server: BENCH_PEERS_DIR and YPERSISTENCE must be set\n')
  process.exit(2)
}
// Resolve as node_modules/y-websocket/bin/server.js does.
const require = createRequire(path.join(peersDir, 'node_modules', 'y-websocket', 'bin', 'server.js'))
const WebSocket = require('ws')
const utils = require('./utils.js')

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 1234)

const wss = new WebSocket.Server({ noServer: true })
const server = http.createServer((_request, response) => {
  response.writeHead(200, { 'Content-Type': 'text/plain' })
  response.end('okay')
})
wss.on('connection', utils.setupWSConnection)
server.on('upgrade', (request, socket, head) => {
  wss.handleUpgrade(request, socket, head, (ws) => wss.emit('connection', ws, request))
})
server.listen(port, host, () => {
  process.stdout.write(`listening ${port}\n`)
})

let stopping = false
process.on('SIGTERM', () => {
  if (stopping) return
  stopping = true
  void (async () => {
    server.close()
    for (const ws of wss.clients) ws.terminate()
    const ldb = utils.getPersistence()?.provider
    if (ldb) {
      // y-leveldb chains every write on `tr`: wait until the chain stops growing.
      for (let tr = null; tr !== ldb.tr; ) {
        tr = ldb.tr
        await tr
      }
      await ldb.destroy()
    }
    process.exit(0)
  })()
})
