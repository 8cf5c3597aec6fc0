import { afterEach, describe, expect, it, vi } from 'vitest'
import { LevelDocumentRepository } from '../src/repositories/level.repository.js'
import { waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'

// With relays after the commit (RELAY_BEFORE_DURABLE=false); relay.early.test.ts has the same fault with early relays.
describe('a failed write is an error, never an ack', () => {
  const t = useServer()
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it('no ack, no relay, the document reloaded from disk; after the fault clears a re-sync stores everything', async () => {
    await t.start(undefined, { relayBeforeDurable: false })
    const a = await t.device('alice', 'phone')
    const b = await t.device('alice', 'laptop')

    const append = vi
      .spyOn(LevelDocumentRepository.prototype, 'write')
      .mockRejectedValueOnce(Object.assign(new Error('IO error: No space left on device'), { code: 'LEVEL_IO_ERROR' }))
    a.addClip('lost-write', 'disk full')
    await expect(a.flushed()).rejects.toThrow(/UNAVAILABLE/)
    expect(append).toHaveBeenCalledTimes(1)
    await waitFor(() => a.errors.length > 0, 'sync:error')
    expect(a.errors).toEqual([expect.objectContaining({ code: 'UNAVAILABLE', event: 'sync:update' })])

    // The document was dropped from memory (it held the failed change) and its devices are disconnected
    // so that they re-sync with the copy reloaded from disk.
    await waitFor(() => !a.socket.connected && !b.socket.connected, 'the devices disconnected')
    expect(b.received).toHaveLength(0)
    const probe = await t.device('alice', 'probe')
    expect(probe.clips().has('lost-write')).toBe(false)

    // The fault has cleared: the device reconnects, and its unacknowledged edit is stored and relayed.
    await b.reconnect()
    await a.reconnect()
    await a.flushed()
    await waitFor(() => b.clips().has('lost-write'), 'the retried edit on the laptop')
    const after = await t.device('alice', 'probe-2')
    expect(after.clips().get('lost-write')?.get('content')).toBe('disk full')
  })
})
