import { afterEach, describe, expect, it, vi } from 'vitest'
import { UpdateLogRepository } from '../src/repositories/update-log.repository.js'
import { waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'

describe('a failed write is an error, never an ack', () => {
  const t = useServer()
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it('no ack, no relay, nothing in memory; after the fault clears a re-sync stores everything', async () => {
    await t.start()
    const a = await t.device('alice', 'phone')
    const b = await t.device('alice', 'laptop')

    const append = vi
      .spyOn(UpdateLogRepository.prototype, 'append')
      .mockRejectedValueOnce(Object.assign(new Error('IO error: No space left on device'), { code: 'LEVEL_IO_ERROR' }))
    a.addClip('lost-write', 'disk full')
    await expect(a.flushed()).rejects.toThrow(/UNAVAILABLE/)
    expect(append).toHaveBeenCalledTimes(1)
    await waitFor(() => a.errors.length > 0, 'sync:error')
    expect(a.errors).toEqual([expect.objectContaining({ code: 'UNAVAILABLE', event: 'sync:update' })])

    // Nothing reached the other device or the server's document.
    const probe = await t.device('alice', 'probe')
    expect(probe.clips().has('lost-write')).toBe(false)
    expect(b.received).toHaveLength(0)

    // The fault has cleared: the device re-syncs, and its unacknowledged edit is stored and relayed.
    const resynced = a.nextSync()
    a.requestSync()
    await resynced
    await a.flushed()
    await waitFor(() => b.clips().has('lost-write'), 'the retried edit on the laptop')
    const after = await t.device('alice', 'probe-2')
    expect(after.clips().get('lost-write')?.get('content')).toBe('disk full')
  })
})
