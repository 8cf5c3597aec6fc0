/**
 * `npm run admin` (src/cli/admin.ts) run as a child process with tsx, against
 * a real server (online commands) and a stopped server's data dir (offline
 * commands).
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readdir, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { entityKey, type SnapshotMeta } from '../src/models/records.js'
import { entityKeyBytes } from '../src/repositories/keys.js'
import { openStore } from '../src/repositories/level-store.js'
import { SyncEntityType } from '../src/types/sync.js'
import { AdminClient } from './helpers/admin-client.js'
import { useServer } from './helpers/fixture.js'
import { tempDir } from './helpers/server.js'

const run = promisify(execFile)

interface Ran {
  code: number
  stdout: string
  stderr: string
}

/** Runs the CLI; never throws (a non-zero exit is in `code`). No ADMIN_TOKEN, SYNC_URL or DATA_DIR leaks in from the environment. */
async function admin(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/admin.ts', ...args], {
      env: { ...process.env, ADMIN_TOKEN: '', SYNC_URL: '', DATA_DIR: '', ...env },
      timeout: 30_000,
    })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }
  }
}

type Document = Record<string, Record<string, Record<string, unknown>>>

/** The document without its soft-deleted entities. */
const live = (doc: Document): Document =>
  Object.fromEntries(Object.entries(doc).map(([collection, entities]) => [collection, Object.fromEntries(Object.entries(entities).filter(([, e]) => e._deleted !== true))]))

const json = <T>(ran: Ran): T => {
  expect(ran, ran.stderr).toMatchObject({ code: 0 })
  return JSON.parse(ran.stdout) as T
}

describe('npm run admin', () => {
  const t = useServer()

  it('online: users, snapshot, snapshots, restore --dry-run, revoke, a server error, erase without --yes', async () => {
    const server = await t.start()
    const j = await t.jsonDevice('alice', 'web')
    await j.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'one', title: 'first' } })
    await j.write('create', { entityType: 'clip', entityId: 'c2', data: { content: 'two' } })
    const b = await t.jsonDevice('bob', 'laptop')
    await b.write('create', { entityType: 'clip', entityId: 'b1', data: { content: 'bob' } })
    const on = (args: string[]) => admin([...args, '--url', server.url], { ADMIN_TOKEN: server.config.adminToken })

    // The token from --data-dir's admin-token when ADMIN_TOKEN is unset.
    const tokenDir = await tempDir()
    await writeFile(path.join(tokenDir, 'admin-token'), `${server.config.adminToken}\n`)
    const listed = json<{ users: { userId: string; entityCounts: Record<string, number> }[]; cursor: string | null }>(
      await admin(['users', '--json', '--url', server.url, '--data-dir', tokenDir]),
    )
    expect(listed.users.map((u) => [u.userId, u.entityCounts.clip]).sort()).toEqual([
      ['alice', 2],
      ['bob', 1],
    ])
    expect(listed.cursor).toBeNull()

    const taken = json<SnapshotMeta>(await on(['snapshot', 'alice', '--label', 'before the edits', '--json']))
    expect(taken).toMatchObject({ userId: 'alice', reason: 'manual', label: 'before the edits', entityCounts: { clip: 2 } })
    await j.write('delete', { entityType: 'clip', entityId: 'c2' })
    await j.write('create', { entityType: 'clip', entityId: 'c3', data: { content: 'three' } })

    const [snapshots, table] = await Promise.all([on(['snapshots', 'alice', '--json']), on(['snapshots', 'alice'])])
    expect(json<{ snapshots: SnapshotMeta[] }>(snapshots).snapshots.map((s) => s.id)).toEqual([taken.id])
    expect(table.stdout).toMatch(new RegExp(`^${taken.id}\\s.*manual\\s+before the edits`, 'm'))

    const dry = json<Record<string, unknown>>(await on(['restore', 'alice', '--snapshot', taken.id, '--dry-run', '--json']))
    expect(dry).toEqual({ restoredFrom: taken.id, snapshotBefore: null, changed: { deleted: 1, revived: 1, updated: 0 }, serverTimestamp: expect.any(Number) })

    const [revoked, unknown, erase] = await Promise.all([on(['revoke', 'alice', 'web', '--json']), on(['user', 'nobody']), on(['erase', 'alice'])])
    expect(json(revoked)).toEqual({ ok: true })
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toContain('NOT_FOUND: no user nobody (HTTP 404)')
    expect(erase.code).toBe(2)
    expect(erase.stderr).toMatch(/pass --yes/)

    const api = new AdminClient(server.url, server.config.adminToken)
    const devices = await api.get<{ devices: { deviceId: string; revoked: boolean }[] }>('/admin/users/alice/devices')
    expect(devices.body.devices.find((d) => d.deviceId === 'web')?.revoked).toBe(true)
    // Not erased, not restored (a dry run).
    expect((await api.get('/admin/users/alice/document')).body).toMatchObject({ clips: { c2: { _deleted: true }, c3: { content: 'three' } } })
  })

  it('offline: export, verify, import --restore into a fresh data dir (live content restored, the snapshot whole), compact; verify finds a broken index and is refused while a server holds the data dir', async () => {
    const server = await t.start()
    const users = ['alice', 'bob', 'carol/ü 100%']
    for (const [i, userId] of users.entries()) {
      const j = await t.jsonDevice(userId, 'web')
      await j.write('create', { entityType: 'clip', entityId: 'c1', data: { content: `first of ${userId}`, title: 'one' } })
      await j.write('create', { entityType: 'clip', entityId: `c${i + 2}`, data: { content: 'more' } })
      await j.write('create', { entityType: 'folder', entityId: 'f1', data: { name: 'inbox' } })
      await j.write('create', { entityType: 'clip', entityId: 'gone', data: { content: 'x' } })
      await j.write('delete', { entityType: 'clip', entityId: 'gone' })
      j.close()
    }
    const api = new AdminClient(server.url, server.config.adminToken)
    const documentOf = async (client: AdminClient, userId: string) => (await client.get<Document>(`/admin/users/${encodeURIComponent(userId)}/document`)).body
    const originals = await Promise.all(users.map((u) => documentOf(api, u)))
    const dataDir = server.config.dataDir

    const locked = await admin(['verify', '--data-dir', dataDir])
    expect(locked.code).toBe(1)
    expect(locked.stderr).toContain(`DATA_DIR ${dataDir} is in use by another process (LevelDB lock held)`)

    await t.server.stop()
    const folder = path.join(await tempDir(), 'export')
    const manifest = json<{ users: { userId: string; file: string; summary: { entityCounts: Record<string, number> } }[] }>(
      await admin(['offline-export', folder, '--data-dir', dataDir, '--json']),
    )
    expect(manifest.users.map((u) => u.userId).sort()).toEqual([...users].sort())
    expect(manifest.users.find((u) => u.userId === 'carol/ü 100%')).toMatchObject({ file: 'carol%2F%C3%BC%20100%25.yjs', summary: { entityCounts: { clip: 2, folder: 1 } } })
    expect((await readdir(folder)).sort()).toEqual(['manifest.json', ...manifest.users.map((u) => u.file)].sort())

    const verified = json<{ checked: number; problems: unknown[] }>(await admin(['verify', '--data-dir', dataDir, '--json']))
    expect(verified).toEqual({ checked: 3, problems: [] })

    const fresh = await tempDir()
    const imported = json<{ users: { userId: string; snapshot?: SnapshotMeta; restore?: { changed: Record<string, number> }; error?: string }[] }>(
      await admin(['offline-import', folder, '--restore', '--data-dir', fresh, '--json']),
    )
    expect(imported.users).toHaveLength(3)
    for (const r of imported.users) {
      expect(r.error).toBeUndefined()
      expect(r.snapshot).toMatchObject({ userId: r.userId, reason: 'import' })
      expect(r.restore?.changed).toEqual({ deleted: 0, revived: 3, updated: 0 })
    }
    expect(existsSync(path.join(fresh, 'db'))).toBe(true)

    // verify finds an index that disagrees with its document: an entry whose deleted flag is wrong, a map not indexed.
    const store = await openStore(dataDir)
    const c1 = entityKeyBytes('alice', entityKey(SyncEntityType.CLIP, 'c1'))
    const record = JSON.parse(new TextDecoder().decode(await store.get(c1))) as { deleted: boolean }
    await store.put(c1, new TextEncoder().encode(JSON.stringify({ ...record, deleted: true })))
    await store.del(entityKeyBytes('bob', entityKey(SyncEntityType.FOLDER, 'f1')))
    await store.close()
    const [broken, compacted] = await Promise.all([
      admin(['verify', '--data-dir', dataDir, '--json']),
      admin(['offline-compact', '--data-dir', fresh, '--json']),
    ])
    expect(broken.code).toBe(1)
    // In the store's order: ids by length, then bytes.
    expect((JSON.parse(broken.stdout) as { problems: unknown[] }).problems).toEqual([
      { userId: 'bob', problem: 'folder f1: in the document, not in the entity index' },
      { userId: 'alice', problem: 'clip c1: the index says deleted=true, the document\'s _deleted is unset' },
    ])
    expect(json<{ users: { userId: string }[] }>(compacted).users).toHaveLength(3)

    const restarted = await t.start(fresh)
    const restored = new AdminClient(restarted.url, restarted.config.adminToken)
    // A restore makes the live content the snapshot's: the trash (soft-deleted `gone`) stays in the imported snapshot only.
    expect(await Promise.all(users.map((u) => documentOf(restored, u)))).toEqual(originals.map(live))
    const snapshotDocs = await Promise.all(
      imported.users.map(async (r) => (await restored.get<{ document: Document }>(`/admin/users/${encodeURIComponent(r.userId)}/snapshots/${r.snapshot?.id ?? ''}`)).body.document),
    )
    expect(snapshotDocs).toEqual(imported.users.map((r) => originals[users.indexOf(r.userId)]))
  })
})
