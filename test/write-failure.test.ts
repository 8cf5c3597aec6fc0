import { afterEach, describe, expect, it, vi } from 'vitest'
import { UpdateLogRepository } from '../src/repositories/update-log.repository.js'
import { YjsDevice, waitFor } from './helpers/device.js'
import { startServer, tokenFor, type TestServer } from './helpers/server.js'

describe('a failed write is an error, never an ack', () => {
  let server: TestServer
  const devices: YjsDevice[] = []
  afterEach(async () => {
    vi.restoreAllMocks()
    devices.splice(0).forEach((d) => d.close())
    await server.stop()
  })

  it('no ack, no relay, nothing in memory; after the fault clears a re-sync stores everything', async () => {
    server = await startServer()
    const token = await tokenFor('alice')
    const a = await YjsDevice.connect(server.url, token, 'phone')
    const b = await YjsDevice.connect(server.url, token, 'laptop')
    devices.push(a, b)

    const append = vi
      .spyOn(UpdateLogRepository.prototype, 'append')
      .mockRejectedValueOnce(Object.assign(new Error('IO error: No space left on device'), { code: 'LEVEL_IO_ERROR' }))
    a.addClip('lost-write', 'disk full')
    await expect(a.flushed()).rejects.toThrow(/UNAVAILABLE/)
    expect(append).toHaveBeenCalledTimes(1)
    await waitFor(() => a.errors.length > 0, 'sync:error')
    expect(a.errors).toEqual([expect.objectContaining({ code: 'UNAVAILABLE', event: 'sync:update' })])

    // Nothing reached the other device or the server's document.
    const probe = await YjsDevice.connect(server.url, token, 'probe')
    devices.push(probe)
    expect(probe.clips().has('lost-write')).toBe(false)
    expect(b.received).toHaveLength(0)

    // The fault has cleared: the device re-syncs, and its unacknowledged edit is stored and relayed.
    const resynced = a.nextSync()
    a.requestSync()
    await resynced
    await a.flushed()
    await waitFor(() => b.clips().has('lost-write'), 'the retried edit on the laptop')
    const after = await YjsDevice.connect(server.url, token, 'probe-2')
    devices.push(after)
    expect(after.clips().get('lost-write')?.get('content')).toBe('disk full')
  })
})
