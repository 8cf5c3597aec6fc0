import { io, type Socket } from 'socket.io-client'
import * as Y from 'yjs'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { LevelDocumentRepository } from '../src/repositories/level.repository.js'
import { waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { tokenFor } from './helpers/server.js'

import type { Reply } from '../src/types/events.js'

describe('a load that fails never serves or stores an empty document in its place (issue 4)', () => {
  const t = useServer()
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it('sync:error UNAVAILABLE and disconnect, no write, then the real document once the fault clears', async () => {
    await t.start()
    const writer = await t.device('alice', 'phone')
    writer.addClip('c1', 'first')
    writer.addClip('c2', 'second')
    await writer.flushed()
    writer.close()
    const dataDir = t.server.config.dataDir
    // A fresh process: the document is not in memory, so the next connection loads it from disk.
    await t.start(dataDir)

    const read = vi
      .spyOn(LevelDocumentRepository.prototype, 'read')
      .mockRejectedValueOnce(Object.assign(new Error('IO error: read failed'), { code: 'LEVEL_IO_ERROR' }))
    const write = vi.spyOn(LevelDocumentRepository.prototype, 'write')

    const socket: Socket = t.track(
      io(t.server.url, { auth: { token: await tokenFor('alice'), deviceId: 'victim' }, transports: ['websocket'], reconnection: false }),
    )
    const errors: unknown[] = []
    socket.on('sync:error', (e: unknown) => errors.push(e))
    const disconnected = new Promise<void>((resolve) => socket.once('disconnect', () => resolve()))
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('connect_error', reject)
    })
    // A write attempt (an empty document's worth of a new clip) racing the failed load: never acknowledged ok.
    const doc = new Y.Doc()
    doc.getMap('clips').set('intruder', new Y.Map([['content', 'written over an empty document']]))
    const attempt = (socket.timeout(1000).emitWithAck('sync:update', { update: Y.encodeStateAsUpdate(doc) }) as Promise<Reply>).then(
      (reply) => reply,
      (err: unknown) => ({ ok: false as const, error: { code: 'NO_ACK', message: String(err) } }),
    )

    await disconnected
    await waitFor(() => errors.length > 0, 'sync:error')
    expect(errors).toContainEqual(expect.objectContaining({ code: 'UNAVAILABLE' }))
    expect(socket.connected).toBe(false)
    const reply = await attempt
    expect(reply.ok).toBe(false)
    expect(read).toHaveBeenCalledTimes(1)
    expect(write).not.toHaveBeenCalled()
    // Nothing (not even an empty stand-in) stayed in memory for alice.
    expect(t.server.services.registry.peek('alice')).toBeUndefined()

    // The fault has cleared: a new connection loads the real document, with all its data.
    const after = await t.device('alice', 'laptop')
    expect(read).toHaveBeenCalledTimes(2)
    expect(after.clips().get('c1')?.get('content')).toBe('first')
    expect(after.clips().get('c2')?.get('content')).toBe('second')
    expect(after.clips().has('intruder')).toBe(false)
    after.close()

    // And on disk, after a restart.
    vi.restoreAllMocks()
    await t.start(dataDir)
    const fresh = await t.device('alice', 'tablet')
    expect(fresh.clips().toJSON()).toEqual({
      c1: expect.objectContaining({ content: 'first' }),
      c2: expect.objectContaining({ content: 'second' }),
    })
  })
})
