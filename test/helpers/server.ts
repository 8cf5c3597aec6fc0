/** A real server on port 0 with LevelDB in a temp dir, for integration tests. */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { vi } from 'vitest'
import { buildApp, type SyncApp } from '../../src/app.js'
import { LevelDocumentRepository } from '../../src/repositories/level.repository.js'
import type { DocumentRepository } from '../../src/repositories/document.repository.js'
import { PLANS, type PlanLimits } from '../../src/models/plans.js'
import { SERVER_LIMITS } from '../../src/models/server-limits.js'
import { signToken } from '../../src/services/token.service.js'
import type { ServerConfig } from '../../src/types/config.js'
import type { Plan } from '../../src/types/events.js'

export const TEST_SECRET = 'test-secret-test-secret-test-secret-0123456789'

export async function tempDir(prefix = 'superclip-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix))
}

/**
 * Overrides that lift every rate limit (plan buckets, socket queue, strikes,
 * per-address limits): for tests that hammer one server on purpose to check
 * something else. `test/rate-limits.test.ts` checks the limits themselves.
 */
export const NO_RATE_LIMITS: Pick<ServerConfig, 'plans' | 'limits'> = (() => {
  const unlimited = { perSecond: 1e9, burst: 1e9 }
  const lift = (p: PlanLimits): PlanLimits => ({ ...p, userEvents: unlimited, socketEvents: unlimited, userBytes: unlimited, socketBytes: unlimited, newClientIds: unlimited, queuedEvents: 1e9 })
  return {
    plans: { free: lift(PLANS.free), pro: lift(PLANS.pro) },
    limits: { ipConnections: unlimited, ipAuthFailures: unlimited, socketQueue: { events: 1e9, bytes: 1e12 }, strikes: unlimited, slice: SERVER_LIMITS.slice, throttle: SERVER_LIMITS.throttle, refusalHold: { ms: 0, held: 0 } },
  }
})()

export function testConfig(dataDir: string, overrides: Partial<ServerConfig> = {}): ServerConfig {
  return {
    host: '127.0.0.1',
    port: 0,
    dataDir,
    jwtSecret: TEST_SECRET,
    adminToken: 'test-admin-token-0123456789',
    logLevel: 'silent',
    docIdleMs: 30_000,
    compactMaxUpdates: 1000,
    compactMaxBytes: 4 << 20,
    maxMessageBytes: 16 << 20,
    compressThresholdBytes: 32 << 10,
    syncWrites: true,
    plans: PLANS,
    limits: SERVER_LIMITS,
    trashRetentionDays: 30,
    snapshotEveryMs: 0,
    snapshotRetention: { hours: 24, days: 30 },
    ...overrides,
  }
}

export interface TestServer extends SyncApp {
  url: string
  config: ServerConfig
  /** Closes the server (pending writes finish); the data dir is kept. */
  stop(): Promise<void>
}

export async function startServer(dataDir?: string, overrides: Partial<ServerConfig> = {}): Promise<TestServer> {
  const config = testConfig(dataDir ?? (await tempDir()), overrides)
  const built = await buildApp(config)
  const address = await built.app.listen({ host: '127.0.0.1', port: config.port })
  let stopped = false
  return {
    ...built,
    url: address,
    config,
    async stop() {
      if (stopped) return
      stopped = true
      await built.app.close()
    },
  }
}

export function tokenFor(userId: string, plan: Plan = 'free', expiresIn?: string | number): Promise<string> {
  return signToken(TEST_SECRET, { userId, plan, ...(expiresIn === undefined ? {} : { expiresIn }) })
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true })
}

/**
 * Holds the server's next LevelDB write until the returned `release` is
 * called: a change is then applied in memory but not yet stored or relayed.
 */
export function holdNextWrite(server: TestServer): () => void {
  const repo = (server.services.sync as unknown as { repo: DocumentRepository }).repo
  const write = repo.write.bind(repo)
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => (release = resolve))
  repo.write = async (writes) => {
    repo.write = write
    await gate
    return write(writes)
  }
  return release
}

/**
 * Holds every LevelDB batch write (of any server or services in this
 * process) until `release()` (then they are written) or `fail(error)` (then
 * they fail with it, writing nothing); `calls()` counts the writes begun.
 * Undone by `vi.restoreAllMocks()`.
 */
export function holdWrites(): { release: () => void; fail: (error: Error) => void; calls: () => number } {
  let release!: () => void
  let fail!: (error: Error) => void
  const gate = new Promise<void>((resolve, reject) => ((release = resolve), (fail = reject)))
  gate.catch(() => undefined)
  // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the repository as `this`
  const original = LevelDocumentRepository.prototype.write
  const spy = vi.spyOn(LevelDocumentRepository.prototype, 'write').mockImplementation(async function (
    this: LevelDocumentRepository,
    ...args: Parameters<LevelDocumentRepository['write']>
  ) {
    await gate
    return original.apply(this, args)
  })
  return { release, fail, calls: () => spy.mock.calls.length }
}
