/**
 * PostgreSQL for tests: TEST_DATABASE_URL (default postgres://127.0.0.1:5432/test),
 * checked once per test file. Unreachable, the PostgreSQL tests are skipped
 * with a message saying so, unless REQUIRE_SERVICES=1 (CI): then they fail.
 * Each user of `createTestSchema` gets its own fresh schema (dropped by
 * `drop()`), so test files running in parallel never share a store, and a
 * store URL whose connections work in it (`options=-c search_path=<schema>`).
 */
import pg from 'pg'
import { connectionConfig, describeUrl } from '../../src/repositories/postgres.repository.js'
import { createSchema, withSearchPath, type FreshSchema } from '../../scripts/lib/postgres-schema.js'

export const TEST_DATABASE_URL = process.env.TEST_DATABASE_URL || 'postgres://127.0.0.1:5432/test'
export const REQUIRE_SERVICES = process.env.REQUIRE_SERVICES === '1'

export interface PostgresAvailability {
  available: boolean
  /** Why the PostgreSQL tests are skipped (undefined when available). */
  skipReason: string | undefined
}

let checked: Promise<PostgresAvailability> | undefined

async function check(): Promise<PostgresAvailability> {
  const client = new pg.Client({ ...connectionConfig(TEST_DATABASE_URL), connectionTimeoutMillis: 3000 })
  try {
    await client.connect()
    await client.query('SELECT 1')
    return { available: true, skipReason: undefined }
  } catch (err) {
    const why = `PostgreSQL at ${describeUrl(TEST_DATABASE_URL)} is unreachable (${err instanceof Error ? err.message : String(err)})`
    if (REQUIRE_SERVICES) throw new Error(`${why}, and REQUIRE_SERVICES=1: the PostgreSQL tests cannot run`, { cause: err })
    return {
      available: false,
      skipReason: `${why}: the PostgreSQL tests are skipped (set TEST_DATABASE_URL to a reachable database, or REQUIRE_SERVICES=1 to fail instead)`,
    }
  } finally {
    await client.end().catch(() => undefined)
  }
}

/**
 * Whether PostgreSQL is reachable; throws under REQUIRE_SERVICES=1 when not.
 * When not (and not required), prints once what is skipped and why (`what`: the tests).
 */
export async function postgresForTests(what: string): Promise<PostgresAvailability> {
  checked ??= check()
  const result = await checked
  if (!result.available) console.warn(`[skipped] ${what}: ${result.skipReason}`)
  return result
}

export type TestSchema = FreshSchema

export { withSearchPath }

/** Creates a fresh schema `sc_<random>` in the test database. */
export const createTestSchema = (): Promise<TestSchema> => createSchema(TEST_DATABASE_URL)
