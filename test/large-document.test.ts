import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { YjsDevice } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { tokenFor } from './helpers/server.js'

describe('large documents', () => {
  const t = useServer()

  it('a 10,000-clip document is pushed in one message over 1 MB and a fresh device syncs all of it', async () => {
    const server = await t.start()
    const token = await tokenFor('alice')
    const a = t.track(new YjsDevice(server.url, token, 'phone'))
    // Edits made before the first sync go up as one update right after sync:response.
    a.doc.transact(() => {
      for (let i = 0; i < 10_000; i++) {
        const clip = new Y.Map<unknown>()
        clip.set('content', `clip ${i}: ${'lorem ipsum '.repeat(8)}`)
        clip.set('contentType', 'text')
        clip.set('createdAt', 1_700_000_000_000 + i)
        a.clips().set(`clip-${i}`, clip)
      }
    })
    const pushed = Y.encodeStateAsUpdate(a.doc).byteLength
    expect(pushed).toBeGreaterThan(1_000_000) // Socket.IO's default maxHttpBufferSize would drop this
    a.socket.connect()
    await a.synced()
    await a.flushed()

    const b = await t.device('alice', 'laptop')
    expect(b.clips().size).toBe(10_000)
    expect(b.responses[0]?.update.byteLength).toBeGreaterThan(1_000_000)
    expect(b.clips().get('clip-9999')?.get('createdAt')).toBe(1_700_000_009_999)
  })
})
