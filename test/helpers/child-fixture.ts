/**
 * Per-test setup and teardown of the process-level tests (real server in a
 * child process): a fresh DATA_DIR per test, devices closed, every child
 * server killed and the directory removed after each test, and no child left
 * running after the file. Call it inside the `describe` it serves; `device`
 * and `closeDevices` may be destructured, `dataDir` is read per test.
 */
import { afterAll, afterEach, beforeEach, expect } from 'vitest'
import { connectDevice } from './clip-burst.js'
import { killAllChildren, runningChildren, type ChildServer } from './child-server.js'
import type { YjsDevice } from './device.js'
import type { Plan } from '../../src/types/events.js'
import { removeDir, tempDir, tokenFor } from './server.js'

export interface ChildServerFixture {
  /** The current test's data directory (a new temp dir per test). */
  readonly dataDir: string
  /** A synced device of `userId` on `server`, closed after the test (or by `closeDevices`). */
  device: (server: ChildServer, userId: string, deviceId: string, plan?: Plan) => Promise<YjsDevice>
  /** Closes every device made so far. */
  closeDevices: () => void
}

export function useChildServers(dirPrefix: string): ChildServerFixture {
  let dataDir: string | undefined
  const devices: YjsDevice[] = []

  beforeEach(async () => {
    dataDir = await tempDir(dirPrefix)
  })
  afterEach(async () => {
    fixture.closeDevices()
    await killAllChildren()
    if (dataDir !== undefined) await removeDir(dataDir)
  })
  afterAll(() => {
    expect(runningChildren()).toBe(0)
  })

  const fixture: ChildServerFixture = {
    get dataDir() {
      if (dataDir === undefined) throw new Error('dataDir is made in beforeEach: use it inside a test')
      return dataDir
    },
    async device(server, userId, deviceId, plan) {
      const d = await connectDevice(server.url, await tokenFor(userId, plan), deviceId)
      devices.push(d)
      return d
    },
    closeDevices() {
      devices.splice(0).forEach((d) => d.close())
    },
  }
  return fixture
}
