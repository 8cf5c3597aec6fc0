/** Per-test server and devices, torn down after each test. */
import { afterEach } from 'vitest'
import type { ServerConfig } from '../../src/types/config.js'
import type { Plan } from '../../src/types/events.js'
import { YjsDevice, type YjsDeviceOptions } from './device.js'
import { JsonDevice, type SyncOptions } from './json-device.js'
import { startServer, tokenFor, type TestServer } from './server.js'

export interface ServerFixture {
  /** Starts (or, after `stop`, restarts) the test's server. */
  start(dataDir?: string, overrides?: Partial<ServerConfig>): Promise<TestServer>
  readonly server: TestServer
  /** A synced Yjs device of `userId`, closed after the test. */
  device(userId: string, deviceId: string, options?: YjsDeviceOptions): Promise<YjsDevice>
  /** A JSON device of `userId` after its first change-log sync, closed after the test. */
  jsonDevice(userId: string, deviceId: string, options?: SyncOptions): Promise<JsonDevice>
  /** A connected JSON device of `userId` that has not synced yet, closed after the test. */
  unsyncedJsonDevice(userId: string, deviceId: string, plan?: Plan): Promise<JsonDevice>
  /** Tracks a device made by hand so it is closed after the test. */
  track<D extends { close(): void }>(device: D): D
}

export function useServer(): ServerFixture {
  let current: TestServer | undefined
  const devices: { close(): void }[] = []
  afterEach(async () => {
    devices.splice(0).forEach((d) => d.close())
    await current?.stop()
    current = undefined
  })
  const fixture: ServerFixture = {
    async start(dataDir, overrides) {
      await current?.stop()
      current = await startServer(dataDir, overrides)
      return current
    },
    get server() {
      if (!current) throw new Error('start() the server first')
      return current
    },
    async device(userId, deviceId, options) {
      return fixture.track(await YjsDevice.connect(fixture.server.url, await tokenFor(userId), deviceId, options))
    },
    async jsonDevice(userId, deviceId, options) {
      return fixture.track(await JsonDevice.connect(fixture.server.url, await tokenFor(userId), deviceId, options))
    },
    async unsyncedJsonDevice(userId, deviceId, plan) {
      return fixture.track(await JsonDevice.connectUnsynced(fixture.server.url, await tokenFor(userId, plan), deviceId))
    },
    track(device) {
      devices.push(device)
      return device
    },
  }
  return fixture
}
