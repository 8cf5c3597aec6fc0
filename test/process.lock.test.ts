/**
 * One DATA_DIR, one server: LevelDB's lock makes a second server process on
 * the same directory exit at once with a clear message (src/index.ts,
 * StoreLockedError), and the first one goes on serving and writing as if
 * nothing happened.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { useChildServers } from './helpers/child-fixture.js'
import { EXIT_TIMEOUT_MS, errorLogs, getHealth, spawnChildServer, startChildServer } from './helpers/child-server.js'

describe('a second server on the same DATA_DIR', () => {
  const fixture = useChildServers('superclip-lock-')
  const { device, closeDevices } = fixture

  it('exits non-zero naming the locked DATA_DIR, while the first keeps serving and writing', async () => {
    const { dataDir } = fixture
    const first = await startChildServer({ dataDir })
    const phone = await device(first, 'alice', 'phone')
    phone.addClip('before', 'written before the second server started')
    await phone.flushed()
    const adminToken = await readFile(path.join(dataDir, 'admin-token'), 'utf8')

    const second = await spawnChildServer({ dataDir })
    const exit = await second.waitForExit()
    expect(exit.signal).toBeNull()
    expect(exit.code).not.toBeNull()
    expect(exit.code).not.toBe(0)
    const stderr = second.stderr()
    expect(stderr).toContain(dataDir)
    expect(stderr).toContain('in use by another process')
    // A clear message, not a crash: no stack trace.
    expect(stderr).not.toMatch(/^\s+at /m)

    // The first server: still running, healthy, its connected device can write, and a new device syncs it all.
    expect(first.hasExited).toBe(false)
    expect(await getHealth(first.url)).toMatchObject({ status: 200, body: { status: 'ok', nodeId: expect.any(String), store: { kind: 'leveldb', reachable: true } } })
    expect(phone.socket.connected).toBe(true)
    phone.addClip('after', 'written after the second server exited')
    await phone.flushed()
    const laptop = await device(first, 'alice', 'laptop')
    expect(laptop.clips().get('before')?.get('content')).toBe('written before the second server started')
    expect(laptop.clips().get('after')?.get('content')).toBe('written after the second server exited')
    // The failed start left the generated secret alone.
    expect(await readFile(path.join(dataDir, 'admin-token'), 'utf8')).toBe(adminToken)

    // The lock belongs to the process: once the first exits cleanly, a server starts on the directory
    // and serves everything the first one acknowledged.
    closeDevices()
    first.kill('SIGTERM')
    expect(await first.waitForExit()).toEqual({ code: 0, signal: null })
    expect(errorLogs(first)).toEqual([])
    const third = await startChildServer({ dataDir })
    const tablet = await device(third, 'alice', 'tablet')
    expect([...tablet.clips().keys()].sort()).toEqual(['after', 'before'])
  })

  it('also when the second one is started while the first is busy writing', async () => {
    const { dataDir } = fixture
    const first = await startChildServer({ dataDir })
    const phone = await device(first, 'alice', 'phone')
    const second = await spawnChildServer({ dataDir })
    // Keep the first one writing, a clip every 25 ms or so (under the free plan's 50 events/s per
    // socket), for as long as the second one is alive.
    let written = 0
    const deadline = Date.now() + EXIT_TIMEOUT_MS
    while (!second.hasExited && Date.now() < deadline) {
      phone.addClip(`busy-${written}`, `clip ${written}`)
      written++
      await phone.flushed()
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
    const exit = await second.waitForExit()
    expect(exit.signal).toBeNull()
    expect(exit.code).not.toBe(0)
    expect(second.stderr()).toContain('in use by another process')

    expect(first.hasExited).toBe(false)
    expect(await getHealth(first.url)).toMatchObject({ status: 200, body: { status: 'ok', nodeId: expect.any(String), store: { kind: 'leveldb', reachable: true } } })
    const laptop = await device(first, 'alice', 'laptop')
    expect(written).toBeGreaterThan(0)
    expect(laptop.clips().size).toBe(written)
  })
})
