/**
 * permessage-deflate only for large frames. `ws` applies its `threshold` only
 * when `server_no_context_takeover` is negotiated; without it every frame is
 * compressed, small acks included, which cut throughput about 5x here (issue 2).
 * A raw WebSocket handshake lets the test see the RSV1 ("compressed") bit that
 * a client library would hide.
 */
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { YjsDevice } from './helpers/device.js'
import { startServer, tokenFor, type TestServer } from './helpers/server.js'

/** Opens an engine.io WebSocket offering permessage-deflate as browsers do; resolves with the first frame's header byte and the negotiated extension. */
function firstFrame(url: string): Promise<{ firstByte: number; extensions: string }> {
  const { hostname, port } = new URL(url)
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(
        'GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\n' +
          `Host: ${hostname}:${port}\r\n` +
          'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n' +
          'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n',
      )
    })
    let buffered = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      buffered = Buffer.concat([buffered, chunk])
      const end = buffered.indexOf('\r\n\r\n')
      if (end < 0 || buffered.length <= end + 4) return
      const headers = buffered.subarray(0, end).toString()
      const extensions = /sec-websocket-extensions: (.*)/i.exec(headers)?.[1] ?? ''
      socket.destroy()
      resolve({ firstByte: buffered[end + 4] ?? 0, extensions })
    })
    socket.on('error', reject)
  })
}

describe('compression of WebSocket frames', () => {
  let server: TestServer
  afterEach(async () => {
    await server.stop()
  })

  it('a small frame goes out uncompressed to a client that offers permessage-deflate', async () => {
    server = await startServer()
    const { firstByte, extensions } = await firstFrame(server.url)
    expect(extensions).toMatch(/permessage-deflate/)
    expect(extensions).toMatch(/server_no_context_takeover/)
    expect(firstByte & 0x80).toBe(0x80) // FIN
    expect(firstByte & 0x40).toBe(0) // RSV1 clear: not compressed
  })

  it('large messages still sync whole when compressed', async () => {
    server = await startServer(undefined, { compressThresholdBytes: 1024 })
    const token = await tokenFor('alice')
    const a = await YjsDevice.connect(server.url, token, 'phone')
    for (let i = 0; i < 200; i++) a.addClip(`c${i}`, 'x'.repeat(100))
    await a.flushed()
    const b = await YjsDevice.connect(server.url, token, 'laptop')
    expect(b.clips().size).toBe(200)
    a.close()
    b.close()
  })
})
