/**
 * The PostgreSQL store beyond the repository contract: a real server on it
 * across a restart, the versioned migrations, the advisory lock (one server
 * per store), DATABASE_URL's validation. Skipped with a message when
 * PostgreSQL is unreachable (failed under REQUIRE_SERVICES=1).
 */
import { existsSync } from 'node:fs'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { parseEnv } from '../src/config.js'
import { openPostgresStore } from '../src/repositories/postgres.repository.js'
import { MIGRATIONS, SCHEMA_VERSION } from '../src/repositories/postgres-schema.js'
import { StoreLockedError } from '../src/utils/errors.js'
import { snapshot } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { createTestSchema, postgresForTests, type TestSchema } from './helpers/postgres.js'
import { tempDir } from './helpers/server.js'

const postgres = await postgresForTests('PostgreSQL store (server restart, migrations, lock)')

describe('DATABASE_URL', () => {
  it('is validated: a postgres:// or postgresql:// URL', () => {
    expect(parseEnv({ DATABASE_URL: 'postgres://u@db:5432/sync' }).databaseUrl).toBe('postgres://u@db:5432/sync')
    expect(parseEnv({ DATABASE_URL: 'postgresql://db/sync' }).databaseUrl).toBe('postgresql://db/sync')
    expect(parseEnv({}).databaseUrl).toBeUndefined()
    expect(() => parseEnv({ DATABASE_URL: 'mysql://db/sync' })).toThrow(/DATABASE_URL: must be a postgres:\/\/ or postgresql:\/\/ URL/)
  })
})

describe.skipIf(!postgres.available)('the PostgreSQL store', () => {
  const t = useServer()
  let schema: TestSchema | undefined
  afterEach(async () => {
    await schema?.drop()
    schema = undefined
  })

  it('a server on PostgreSQL keeps every clip across a restart on the same database', async () => {
    schema = await createTestSchema()
    const dir = await tempDir()
    await t.start(dir, { databaseUrl: schema.url })
    const a = await t.device('alice', 'phone')
    for (let i = 0; i < 50; i++) a.addClip(`c${i}`, `clip ${i}`)
    await a.flushed()
    const before = snapshot(a.doc)
    a.close()
    // In PostgreSQL, and nothing of it in LevelDB: the data dir holds no store.
    const tables = await schema.admin.query<{ n: string }>(`SELECT count(*) AS n FROM ${schema.name}.log_entries WHERE doc_id = 'alice'`)
    expect(Number(tables.rows[0]?.n)).toBeGreaterThan(0)
    expect(existsSync(path.join(dir, 'db'))).toBe(false)
    await t.start(dir, { databaseUrl: schema.url })
    const health = await fetch(`${t.server.url}/health`)
    expect(health.status).toBe(200)
    const b = await t.device('alice', 'new-laptop')
    expect(snapshot(b.doc)).toEqual(before)
    expect(b.clips().size).toBe(50)
    await t.server.stop()
  })

  it('migrates at the first start, versioned; a second start applies nothing and keeps the data', async () => {
    schema = await createTestSchema()
    const first = await openPostgresStore(schema.url)
    // Every numbered migration, in order, the newest being the server's version.
    expect(first.migrated).toEqual(MIGRATIONS.map((m) => m.version))
    expect(first.migrated.at(-1)).toBe(SCHEMA_VERSION)
    expect(first.schema).toBe(schema.name)
    await first.repo.write([{ docId: 'alice', clock: 7, entities: [], conflicts: [], changes: [], devices: [], append: { firstSeq: 0, updates: [new Uint8Array([1, 2])] } }])
    await first.close()
    const second = await openPostgresStore(schema.url)
    try {
      expect(second.migrated).toEqual([])
      expect((await second.repo.read('alice')).clock).toBe(7)
    } finally {
      await second.close()
    }
    const { rows } = await schema.admin.query<{ version: number; name: string }>(`SELECT version, name FROM ${schema.name}.schema_migrations ORDER BY version`)
    expect(rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version))
  })

  it('refuses a schema newer than the server (a downgrade)', async () => {
    schema = await createTestSchema()
    await (await openPostgresStore(schema.url)).close()
    await schema.admin.query(`INSERT INTO ${schema.name}.schema_migrations (version, name) VALUES (${SCHEMA_VERSION + 1}, 'from the future')`)
    await expect(openPostgresStore(schema.url)).rejects.toThrow(/newer than this server/)
  })

  it('one server per store: a second is refused while the first holds the advisory lock, another schema is not', async () => {
    schema = await createTestSchema()
    const other = await createTestSchema()
    const first = await openPostgresStore(schema.url)
    try {
      const refused = openPostgresStore(schema.url)
      await expect(refused).rejects.toBeInstanceOf(StoreLockedError)
      await expect(refused).rejects.toThrow(/in use by another process \(advisory lock held\)/)
      const elsewhere = await openPostgresStore(other.url)
      await elsewhere.close()
      // A refused server on the whole stack: buildApp fails the same way.
      await expect(t.start(await tempDir(), { databaseUrl: schema.url })).rejects.toBeInstanceOf(StoreLockedError)
    } finally {
      await first.close()
      await other.drop()
    }
    // Released on close: the next one starts.
    await (await openPostgresStore(schema.url)).close()
  })
})
