import { stat, readFile } from 'node:fs/promises'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { ConfigError, loadConfig, parseEnv } from '../src/config.js'
import { tempDir } from './helpers/server.js'

describe('configuration from the environment (protocol §8)', () => {
  it('has the documented defaults', () => {
    const c = parseEnv({})
    expect(c).toMatchObject({
      host: '127.0.0.1',
      port: 8080,
      logLevel: 'info',
      syncWrites: true,
      trashRetentionDays: 30,
      snapshotEveryMs: 3_600_000,
      snapshotRetention: { hours: 24, days: 30 },
      // At 1000, an import of 20,000 clips was merged 11-12 times on the server's core (issue 15).
      compactMaxUpdates: 4000,
      compactMaxBytes: 4 << 20,
    })
    expect(parseEnv({ SNAPSHOT_EVERY_MS: '0', SNAPSHOT_RETENTION: '48h', TRASH_RETENTION_DAYS: '7' })).toMatchObject({
      snapshotEveryMs: 0,
      snapshotRetention: { hours: 48, days: 0 },
      trashRetentionDays: 7,
    })
    expect(c.dataDir).toBe(path.resolve('./data'))
  })

  it('reports every bad variable by name', () => {
    const bad = () => parseEnv({ PORT: 'eighty', LOG_LEVEL: 'loud', JWT_SECRET: 'short', SYNC_WRITES: 'maybe' })
    expect(bad).toThrow(ConfigError)
    expect(bad).toThrow(/PORT/)
    expect(bad).toThrow(/LOG_LEVEL/)
    expect(bad).toThrow(/JWT_SECRET must be at least 32 characters/)
    expect(bad).toThrow(/SYNC_WRITES/)
    expect(() => parseEnv({ PORT: '70000' })).toThrow(/PORT/)
    const retention = () => parseEnv({ SNAPSHOT_RETENTION: 'forever', TRASH_RETENTION_DAYS: '-1' })
    expect(retention).toThrow(/SNAPSHOT_RETENTION: must look like 24h,30d/)
    expect(retention).toThrow(/TRASH_RETENTION_DAYS/)
  })

  it('generates JWT_SECRET and ADMIN_TOKEN once into DATA_DIR with mode 0600 and reuses them', async () => {
    const dir = await tempDir()
    const first = await loadConfig({ DATA_DIR: dir })
    expect(first.jwtSecret.length).toBeGreaterThanOrEqual(32)
    expect(first.adminToken).not.toBe(first.jwtSecret)
    for (const name of ['jwt-secret', 'admin-token']) {
      expect((await stat(path.join(dir, name))).mode & 0o777).toBe(0o600)
    }
    const second = await loadConfig({ DATA_DIR: dir })
    expect(second.jwtSecret).toBe(first.jwtSecret)
    expect(second.adminToken).toBe(first.adminToken)
    expect((await readFile(path.join(dir, 'jwt-secret'), 'utf8')).trim()).toBe(first.jwtSecret)
  })

  it('a secret from the environment wins and is not written to disk', async () => {
    const dir = await tempDir()
    const secret = 's'.repeat(40)
    const c = await loadConfig({ DATA_DIR: dir, JWT_SECRET: secret })
    expect(c.jwtSecret).toBe(secret)
    await expect(stat(path.join(dir, 'jwt-secret'))).rejects.toThrow(/ENOENT/)
  })
})
