/**
 * The Socket.IO floor of `npm run bench:peers`: a bare Socket.IO server (the
 * project's own socket.io, with the options of src/websockets/server.ts) that
 * answers our wire protocol's messages for a Yjs device and nothing more. An
 * initial sync answers an empty document; each `sync:update` is acknowledged
 * `{ ok: true, serverTimestamp }` and relayed as `sync:update`
 * `{ update, deviceId, serverTimestamp }` to the user's other sockets, one
 * relay per update. No Yjs, no checks, no storage, no authentication (the
 * token's `sub` is read, not verified).
 *
 * It is the most any server speaking this protocol over Socket.IO could do on
 * this machine: the cost of the messages themselves. It speaks both wires of
 * src/websockets/single-frame.ts: with Socket.IO's default parser an update
 * arrives as two WebSocket frames (a JSON header and its binary attachment),
 * an ack is one frame and a relay two; a device that asked for single
 * messages (`auth.wire`) sends an update as one frame and gets a relay as one.
 *
 * Environment: HOST, PORT. Prints `listening <port>` once it accepts
 * connections; exits on SIGTERM.
 */
import { Buffer } from 'node:buffer'
import http from 'node:http'
import process from 'node:process'
import { Server } from 'socket.io'
import { dualParser, Encoder, WIRE_SINGLE_FRAME } from '@superclip/sync-client/wire'

const host = process.env.HOST ?? '127.0.0.1'
const port = Number(process.env.PORT ?? 0)
// The defaults of src/config.ts (MAX_MESSAGE_BYTES, COMPRESS_THRESHOLD_BYTES).
const MAX_MESSAGE_BYTES = 16 << 20
const COMPRESS_THRESHOLD_BYTES = 32 << 10

/** Y.encodeStateAsUpdate and Y.encodeStateVector of an empty Y.Doc. */
const EMPTY_UPDATE = new Uint8Array([0, 0])
const EMPTY_STATE_VECTOR = new Uint8Array([0])

const httpServer = http.createServer((_request, response) => {
  response.writeHead(404)
  response.end()
})
const io = new Server(httpServer, {
  maxHttpBufferSize: MAX_MESSAGE_BYTES,
  perMessageDeflate: { threshold: COMPRESS_THRESHOLD_BYTES, serverNoContextTakeover: true },
  httpCompression: { threshold: COMPRESS_THRESHOLD_BYTES },
  serveClient: false,
  parser: dualParser,
})
const singleFrames = new Encoder()

/** The JWT's `sub`, unverified. */
function subject(token) {
  try {
    const payload = JSON.parse(Buffer.from(String(token).split('.')[1] ?? '', 'base64url').toString('utf8'))
    return typeof payload.sub === 'string' ? payload.sub : undefined
  } catch {
    return undefined
  }
}

io.use((socket, next) => {
  const userId = subject(socket.handshake.auth?.token)
  const deviceId = socket.handshake.auth?.deviceId
  if (!userId || typeof deviceId !== 'string') return next(new Error('unauthorized'))
  socket.data.userId = userId
  socket.data.deviceId = deviceId
  socket.data.singleFrame = socket.handshake.auth?.wire === WIRE_SINGLE_FRAME
  next()
})

io.on('connection', (socket) => {
  const { userId, deviceId } = socket.data
  // Devices of the default wire get relays through Socket.IO's room; single-message ones one by one.
  const room = socket.data.singleFrame ? `frames:${userId}` : `user:${userId}`
  const framesRoom = `frames:${userId}`
  socket.on('sync:request', (_payload, ack) => {
    const serverTimestamp = Date.now()
    socket.emit('sync:start', { deviceId, mode: 'yjs' })
    socket.emit('sync:response', { mode: 'yjs', update: EMPTY_UPDATE, stateVector: EMPTY_STATE_VECTOR, serverTimestamp })
    socket.emit('sync:complete', { deviceId, mode: 'yjs', serverTimestamp })
    void socket.join(room)
    if (typeof ack === 'function') ack({ ok: true })
  })
  socket.on('sync:update', (payload, ack) => {
    const serverTimestamp = Date.now()
    if (typeof ack === 'function') ack({ ok: true, serverTimestamp })
    const relay = { update: payload?.update, deviceId, serverTimestamp }
    socket.to(`user:${userId}`).emit('sync:update', relay)
    const members = io.sockets.adapter.rooms.get(framesRoom)
    if (!members || (members.size === 1 && members.has(socket.id))) return
    const encoded = singleFrames.encode({ type: 2, nsp: '/', data: ['sync:update', relay] })
    for (const id of members) if (id !== socket.id) for (const message of encoded) io.sockets.sockets.get(id)?.conn.write(message)
  })
})

httpServer.listen(port, host, () => {
  process.stdout.write(`listening ${port}\n`)
})
process.on('SIGTERM', () => {
  io.close()
  process.exit(0)
})
