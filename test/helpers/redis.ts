/**
 * Redis for the cluster tests: TEST_REDIS_URL (default
 * redis://127.0.0.1:6379), checked once per test file like PostgreSQL
 * (helpers/postgres.ts): unreachable, the tests that need it are skipped with
 * a message saying so, unless REQUIRE_SERVICES=1 (CI) makes them fail. Each
 * cluster gets its own key prefix (`REDIS_KEY_PREFIX`), so test files running
 * in parallel never hear each other's nodes.
 */
import { randomBytes } from 'node:crypto'
import { createClient } from 'redis'
import { REQUIRE_SERVICES } from './postgres.js'

export const TEST_REDIS_URL = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379'

export interface RedisAvailability {
  available: boolean
  skipReason: string | undefined
}

let checked: Promise<RedisAvailability> | undefined

async function check(): Promise<RedisAvailability> {
  const client = createClient({ url: TEST_REDIS_URL, socket: { connectTimeout: 3000, reconnectStrategy: false } })
  client.on('error', () => undefined)
  try {
    await client.connect()
    await client.ping()
    return { available: true, skipReason: undefined }
  } catch (err) {
    const why = `Redis at ${TEST_REDIS_URL} is unreachable (${err instanceof Error ? err.message : String(err)})`
    if (REQUIRE_SERVICES) throw new Error(`${why}, and REQUIRE_SERVICES=1: the cluster tests cannot run`, { cause: err })
    return { available: false, skipReason: `${why}: the cluster tests are skipped (set TEST_REDIS_URL, or REQUIRE_SERVICES=1 to fail instead)` }
  } finally {
    if (client.isOpen) await client.close().catch(() => undefined)
  }
}

/** Whether Redis is reachable; throws under REQUIRE_SERVICES=1 when not, and says what is skipped when not required. */
export async function redisForTests(what: string): Promise<RedisAvailability> {
  checked ??= check()
  const result = await checked
  if (!result.available) console.warn(`[skipped] ${what}: ${result.skipReason}`)
  return result
}

/** A key prefix of its own for one test's cluster. */
export const testRedisPrefix = (): string => `superclip-test-${randomBytes(6).toString('hex')}`
