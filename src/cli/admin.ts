/**
 * `npm run admin -- <command>`: the operator CLI (docs/operations.md#cli).
 *
 * Online commands call the operators' HTTP API of a running server (`--url`,
 * default SYNC_URL or http://127.0.0.1:8080) with the admin token from
 * ADMIN_TOKEN or `<data dir>/admin-token`. Offline commands (`offline-export`,
 * `offline-import`, `verify`, `offline-compact`) open a stopped server's
 * DATA_DIR with the server's own services (src/cli/offline.ts); LevelDB's lock
 * refuses them while a server runs there.
 *
 * `--json` prints the raw JSON (for scripts), tables otherwise. Exit codes: 0
 * done, 1 failed (an HTTP error prints the server's code and message; verify
 * found problems), 2 usage (a missing argument, erase without --yes).
 */
import { readFile, stat, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import type { DocumentJson } from '../services/operators/document-json.js'
import type { DeviceInfo, RestoreResult, SnapshotMeta, TrashEntry, UserSummary } from '../types/operators.js'
import { SyncEntityType } from '../types/sync.js'
// Types only: the offline commands import ./offline.js when they run, so online ones load neither LevelDB nor the services.
import type * as OfflineModule from './offline.js'
import { AdminApiError, AdminClient, adminToken, UnreachableError, userPath } from './admin-client.js'
import { counts, isoTime, keyValues, progress, table, type Column } from './format.js'

const DEFAULT_URL = 'http://127.0.0.1:8080'

interface Globals {
  url: string
  dataDir: string
  json?: boolean
}

/** A command given wrongly (exit code 2). */
class UsageError extends Error {
  override name = 'UsageError'
}

type Offline = OfflineModule.Offline

const write = (s: string): void => void process.stdout.write(s)
const asJson = (value: unknown): string => JSON.stringify(value, null, 2) + '\n'

/** `value` as JSON with --json, else as `human` shows it. */
function show<T>(g: Globals, value: T, human: (value: T) => string): void {
  write(g.json ? asJson(value) : human(value))
}

/** What a command answered with 204 prints: `{ "ok": true }` with --json, else `message`. */
function done(g: Globals, message: string): void {
  show(g, { ok: true }, () => `${message}\n`)
}

// ---- argument parsers -------------------------------------------------------

function intArg(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`)
    return n
  }
}

/** ms since the epoch, or a date `Date.parse` reads (ISO 8601). */
function timeArg(value: string): number {
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value)
  if (!Number.isSafeInteger(ms) || ms < 0) throw new InvalidArgumentError('must be ms since the epoch or an ISO date (2026-01-31T12:00:00Z)')
  return ms
}

const ENTITY_TYPES: readonly string[] = Object.values(SyncEntityType)

function entityTypeArg(value: string): SyncEntityType {
  if (!ENTITY_TYPES.includes(value)) throw new InvalidArgumentError(`must be one of ${ENTITY_TYPES.join(', ')}`)
  return value as SyncEntityType
}

/** `<type>:<id>` (the id may hold colons). */
function entityArg(value: string): { entityType: SyncEntityType; entityId: string } {
  const at = value.indexOf(':')
  if (at <= 0 || at === value.length - 1) throw new InvalidArgumentError('must be <type>:<id>, e.g. clip:c1')
  return { entityType: entityTypeArg(value.slice(0, at)), entityId: value.slice(at + 1) }
}

// ---- command runners --------------------------------------------------------

function globalsOf(args: unknown[]): Globals {
  return (args.at(-1) as Command).optsWithGlobals<Globals>()
}

/** An online command: `run(api, globals, ...its arguments and options)`. */
function online<A extends unknown[]>(run: (api: AdminClient, g: Globals, ...args: A) => Promise<void>) {
  return async (...args: unknown[]): Promise<void> => {
    const g = globalsOf(args)
    const api = new AdminClient(g.url, () => adminToken(process.env, g.dataDir))
    await run(api, g, ...(args.slice(0, -1) as A))
  }
}

/** An offline command on `--data-dir`, with the store open (`create`: an empty directory is fine) and closed after. */
function offline<A extends unknown[]>(create: boolean, run: (mod: typeof OfflineModule, store: Offline, g: Globals, ...args: A) => Promise<void>) {
  return async (...args: unknown[]): Promise<void> => {
    const g = globalsOf(args)
    const mod = await import('./offline.js')
    const opened = await mod.openOffline(g.dataDir, { create })
    try {
      await run(mod, opened, g, ...(args.slice(0, -1) as A))
    } finally {
      await opened.close()
    }
  }
}

// ---- tables -----------------------------------------------------------------

const userColumns: Column<UserSummary>[] = [
  { header: 'user', value: (u) => u.userId },
  { header: 'bytes', value: (u) => u.bytes, right: true },
  { header: 'entities', value: (u) => counts(u.entityCounts) },
  { header: 'devices', value: (u) => u.devicesConnected, right: true },
  { header: 'last activity', value: (u) => isoTime(u.lastActivityAt) },
  { header: 'loaded', value: (u) => u.loaded },
]

const snapshotColumns: Column<SnapshotMeta>[] = [
  { header: 'id', value: (s) => s.id },
  { header: 'taken', value: (s) => isoTime(s.takenAt) },
  { header: 'reason', value: (s) => s.reason },
  { header: 'label', value: (s) => s.label },
  { header: 'bytes', value: (s) => s.bytes, right: true },
  { header: 'entities', value: (s) => counts(s.entityCounts) },
]

const snapshotPairs = (s: SnapshotMeta) =>
  [
    ['id', s.id],
    ['user', s.userId],
    ['taken', isoTime(s.takenAt)],
    ['reason', s.reason],
    ['label', s.label],
    ['bytes', s.bytes],
    ['entities', counts(s.entityCounts)],
  ] as const

const restorePairs = (r: RestoreResult) =>
  [
    ['restored from', r.restoredFrom],
    ['snapshot before', r.snapshotBefore ?? '(none: dry run)'],
    ['deleted', r.changed.deleted],
    ['revived', r.changed.revived],
    ['updated', r.changed.updated],
    ['server timestamp', r.serverTimestamp],
  ] as const

// ---- the program -------------------------------------------------------------

function buildProgram(): Command {
  const program = new Command('npm run admin --')
    .description('Operate a SuperClip Sync server: online over its operators’ HTTP API, offline on a stopped server’s DATA_DIR.')
    .option('--url <url>', 'the server, for online commands (env SYNC_URL)', process.env.SYNC_URL || DEFAULT_URL)
    .option('--data-dir <dir>', 'the server’s DATA_DIR: its admin-token (online, unless ADMIN_TOKEN is set), its store (offline) (env DATA_DIR)', process.env.DATA_DIR || './data')
    .option('--json', 'print the raw JSON, for scripts')
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError('(add --help for usage)')
    .exitOverride()
    .addHelpText(
      'after',
      `
Examples:
  npm run admin -- users --all
  npm run admin -- snapshot alice --label "before cleanup"
  npm run admin -- restore alice --at 2026-01-31T12:00:00Z --dry-run
  npm run admin -- export alice <snapshotId> --out alice.yjs
  npm run admin -- offline-export backup/ --data-dir /var/lib/superclip   (server stopped)

Online commands need the admin token: ADMIN_TOKEN, or <data dir>/admin-token.`,
    )

  // ---- users ---------------------------------------------------------------

  program
    .command('users')
    .description('list users with sizes and activity: one page, or every page with --all')
    .option('--limit <n>', 'users per page, 1-1000 (default 100; 1000 with --all)', intArg(1, 1000))
    .option('--cursor <cursor>', 'the page after this cursor (the previous page prints it)')
    .addOption(new Option('--all', 'every user, page after page').conflicts('cursor'))
    .action(
      online(async (api, g, opts: { limit?: number; cursor?: string; all?: boolean }) => {
        type Page = { users: UserSummary[]; cursor: string | null }
        if (!opts.all) {
          const page = await api.json<Page>('GET', '/admin/users', { query: { limit: opts.limit, cursor: opts.cursor } })
          show(g, page, (p) => table(p.users, userColumns, '(no users)') + (p.cursor === null ? '' : `next page: --cursor ${p.cursor}\n`))
          return
        }
        const users: UserSummary[] = []
        const bar = progress('users', undefined)
        try {
          let cursor: string | undefined
          do {
            const page = await api.json<Page>('GET', '/admin/users', { query: { limit: opts.limit ?? 1000, cursor } })
            users.push(...page.users)
            bar.tick(page.users.length)
            cursor = page.cursor ?? undefined
          } while (cursor !== undefined)
        } finally {
          bar.stop()
        }
        show(g, { users, cursor: null }, (p) => table(p.users, userColumns, '(no users)') + `${p.users.length} users\n`)
      }),
    )

  program
    .command('user')
    .description('one user’s summary')
    .argument('<userId>')
    .action(
      online(async (api, g, userId: string) => {
        const u = await api.json<UserSummary>('GET', userPath(userId))
        show(g, u, () =>
          keyValues([
            ['user', u.userId],
            ['bytes', u.bytes],
            ['entities', counts(u.entityCounts)],
            ['devices connected', u.devicesConnected],
            ['last activity', isoTime(u.lastActivityAt)],
            ['loaded', u.loaded],
          ]),
        )
      }),
    )

  program
    .command('document')
    .description('the user’s document as JSON (soft-deleted entities included, with _deleted)')
    .argument('<userId>')
    .action(
      online(async (api, _g, userId: string) => {
        write(asJson(await api.json<DocumentJson>('GET', userPath(userId, 'document'))))
      }),
    )

  // ---- snapshots -------------------------------------------------------------

  program
    .command('snapshot')
    .description('take a snapshot of the user’s document now')
    .argument('<userId>')
    .option('--label <label>', 'a label kept with it')
    .action(
      online(async (api, g, userId: string, opts: { label?: string }) => {
        const meta = await api.json<SnapshotMeta>('POST', userPath(userId, 'snapshots'), { json: opts.label === undefined ? {} : { label: opts.label } })
        show(g, meta, (s) => keyValues(snapshotPairs(s)))
      }),
    )

  program
    .command('snapshots')
    .description('the user’s snapshots, newest first')
    .argument('<userId>')
    .action(
      online(async (api, g, userId: string) => {
        const list = await api.json<{ snapshots: SnapshotMeta[] }>('GET', userPath(userId, 'snapshots'))
        show(g, list, (l) => table(l.snapshots, snapshotColumns, '(no snapshots)'))
      }),
    )

  program
    .command('snapshot-show')
    .description('a snapshot’s metadata and its document as JSON')
    .argument('<userId>')
    .argument('<id>', 'the snapshot id')
    .action(
      online(async (api, g, userId: string, id: string) => {
        const s = await api.json<SnapshotMeta & { document: DocumentJson }>('GET', userPath(userId, 'snapshots', id))
        show(g, s, () => keyValues(snapshotPairs(s)) + '\n' + asJson(s.document))
      }),
    )

  program
    .command('export')
    .description('a snapshot’s Yjs state (binary), to --out or to stdout')
    .argument('<userId>')
    .argument('<id>', 'the snapshot id')
    .option('--out <file>', 'write it to this file (default: stdout, redirected)')
    .action(
      online(async (api, g, userId: string, id: string, opts: { out?: string }) => {
        if (opts.out === undefined && process.stdout.isTTY) throw new UsageError('the export is binary (a Yjs update): pass --out <file> or redirect stdout')
        const bytes = await api.bytes('GET', userPath(userId, 'snapshots', id, 'export'))
        if (opts.out === undefined) {
          process.stdout.write(bytes)
          return
        }
        await writeFile(opts.out, bytes)
        show(g, { file: path.resolve(opts.out), bytes: bytes.byteLength }, (r) => `wrote ${r.bytes} bytes to ${r.file}\n`)
      }),
    )

  program
    .command('import')
    .description('store an exported snapshot for the user (reason "import"); restore from it to make it their content')
    .argument('<userId>')
    .argument('<file>', 'an exported snapshot (.yjs)')
    .option('--label <label>', 'a label kept with it')
    .action(
      online(async (api, g, userId: string, file: string, opts: { label?: string }) => {
        const bytes = await readFile(file)
        const meta = await api.json<SnapshotMeta>('POST', userPath(userId, 'snapshots', 'import'), { bytes, query: { label: opts.label } })
        show(g, meta, (s) => keyValues(snapshotPairs(s)))
      }),
    )

  program
    .command('snapshot-delete')
    .description('delete a snapshot')
    .argument('<userId>')
    .argument('<id>', 'the snapshot id')
    .action(
      online(async (api, g, userId: string, id: string) => {
        await api.json('DELETE', userPath(userId, 'snapshots', id))
        done(g, `snapshot ${id} of ${userId} deleted`)
      }),
    )

  program
    .command('restore')
    .description('make the user’s content (or one entity’s) a snapshot’s, as forward changes every device receives')
    .argument('<userId>')
    .addOption(new Option('--snapshot <id>', 'the snapshot to restore').conflicts('at'))
    .addOption(new Option('--at <time>', 'the newest snapshot taken at or before this time: ms since the epoch or an ISO date').argParser(timeArg))
    .option('--entity <type:id>', 'only this entity, e.g. clip:c1', entityArg)
    .option('--dry-run', 'only count what would change')
    .action(
      online(
        async (
          api,
          g,
          userId: string,
          opts: { snapshot?: string; at?: number; entity?: { entityType: SyncEntityType; entityId: string }; dryRun?: boolean },
        ) => {
          if (opts.snapshot === undefined && opts.at === undefined) throw new UsageError('restore needs --snapshot <id> or --at <time>')
          const body = {
            ...(opts.snapshot === undefined ? {} : { snapshotId: opts.snapshot }),
            ...(opts.at === undefined ? {} : { at: opts.at }),
            ...opts.entity,
            ...(opts.dryRun ? { dryRun: true } : {}),
          }
          const result = await api.json<RestoreResult>('POST', userPath(userId, 'restore'), { json: body })
          show(g, result, (r) => (opts.dryRun ? 'dry run: nothing written\n' : '') + keyValues(restorePairs(r)))
        },
      ),
    )

  // ---- trash ------------------------------------------------------------------

  program
    .command('trash')
    .description('the user’s soft-deleted entities, newest first')
    .argument('<userId>')
    .action(
      online(async (api, g, userId: string) => {
        const trash = await api.json<{ entities: TrashEntry[] }>('GET', userPath(userId, 'trash'))
        show(g, trash, (t) =>
          table(
            t.entities,
            [
              { header: 'type', value: (e) => e.entityType },
              { header: 'id', value: (e) => e.entityId },
              { header: 'deleted', value: (e) => isoTime(e.deletedAt) },
              { header: 'by device', value: (e) => e.deviceId },
            ],
            '(the trash is empty)',
          ),
        )
      }),
    )

  program
    .command('trash-restore')
    .description('revive one entity from the trash')
    .argument('<userId>')
    .argument('<type>', `the entity type: ${ENTITY_TYPES.join(', ')}`, entityTypeArg)
    .argument('<id>', 'the entity id')
    .action(
      online(async (api, g, userId: string, entityType: SyncEntityType, entityId: string) => {
        const reply = await api.json<{ entityType: string; entityId: string; version: number; serverTimestamp: number }>('POST', userPath(userId, 'trash', 'restore'), {
          json: { entityType, entityId },
        })
        show(g, reply, (r) => `${r.entityType} ${r.entityId} restored (version ${r.version})\n`)
      }),
    )

  // ---- devices -------------------------------------------------------------------

  program
    .command('devices')
    .description('the user’s devices: connected, last seen, revoked')
    .argument('<userId>')
    .action(
      online(async (api, g, userId: string) => {
        const list = await api.json<{ devices: DeviceInfo[] }>('GET', userPath(userId, 'devices'))
        show(g, list, (l) =>
          table(
            l.devices,
            [
              { header: 'device', value: (d) => d.deviceId },
              { header: 'connected', value: (d) => d.connected },
              { header: 'revoked', value: (d) => d.revoked },
              { header: 'last seen', value: (d) => isoTime(d.lastSeenAt) },
              { header: 'last sync', value: (d) => isoTime(d.lastSyncTimestamp) },
            ],
            '(no devices)',
          ),
        )
      }),
    )

  const deviceCommand = (name: string, description: string, method: string, route: string, message: string) =>
    program
      .command(name)
      .description(description)
      .argument('<userId>')
      .argument('<deviceId>')
      .action(
        online(async (api, g, userId: string, deviceId: string) => {
          await api.json(method, userPath(userId, 'devices', deviceId, route))
          done(g, `device ${deviceId} of ${userId} ${message}`)
        }),
      )
  deviceCommand('disconnect', 'close the device’s sockets (it may reconnect)', 'POST', 'disconnect', 'disconnected')
  deviceCommand('revoke', 'disconnect the device and refuse it (REVOKED) at every later connect', 'POST', 'revoke', 'revoked')
  deviceCommand('unrevoke', 'accept a revoked device again', 'DELETE', 'revoke', 'accepted again')

  // ---- compact, erase, metrics --------------------------------------------------------

  program
    .command('compact')
    .description('compact the user’s update log now')
    .argument('<userId>')
    .action(
      online(async (api, g, userId: string) => {
        const reply = await api.json<{ bytesBefore: number; bytesAfter: number }>('POST', userPath(userId, 'compact'))
        show(g, reply, (r) => `${userId}: ${r.bytesBefore} -> ${r.bytesAfter} bytes\n`)
      }),
    )

  program
    .command('erase')
    .description('erase the user: sockets closed, every key removed (document, snapshots, devices), for good')
    .argument('<userId>')
    .option('--yes', 'confirm the erasure (refused without)')
    .action(
      online(async (api, g, userId: string, opts: { yes?: boolean }) => {
        if (!opts.yes) throw new UsageError(`erase removes every key of user ${userId} for good, snapshots included; pass --yes to confirm`)
        await api.json('DELETE', userPath(userId))
        done(g, `user ${userId} erased`)
      }),
    )

  program
    .command('metrics')
    .description('the server’s metrics in Prometheus text format (GET /metrics), as they come')
    .action(
      online(async (api) => {
        write(await api.text('GET', '/metrics'))
      }),
    )

  // ---- offline ---------------------------------------------------------------------

  program
    .command('offline-export')
    .description('(server stopped) write every user’s document to <folder>: <encodeURIComponent(userId)>.yjs and manifest.json')
    .argument('<folder>')
    .action(
      offline(false, async (mod, store, g, folder: string) => {
        const manifest = await mod.exportAll(store, folder, (total) => progress('exporting', total))
        show(g, manifest, (m) => `exported ${m.users.length} users to ${path.resolve(folder)} (${mod.MANIFEST} lists them)\n`)
      }),
    )

  program
    .command('offline-import')
    .description('(server stopped) store each file of an offline-export folder as its user’s snapshot (reason "import"); --restore also makes it their content')
    .argument('<folder>')
    .option('--restore', 'restore each user to the imported snapshot (forward changes; a before-restore snapshot first)')
    .option('--label <label>', 'a label kept with each snapshot')
    .hook('preAction', async (command) => {
      // Before a new data dir is made for nothing.
      const folder = command.args[0] ?? ''
      if (!(await stat(folder).catch(() => undefined))?.isDirectory()) throw new UsageError(`${folder} is not a folder (an offline-export)`)
    })
    .action(
      offline(true, async (mod, store, g, folder: string, opts: { restore?: boolean; label?: string }) => {
        const results = await mod.importAll(store, folder, { restore: opts.restore === true, ...(opts.label === undefined ? {} : { label: opts.label }) }, (total) =>
          progress('importing', total),
        )
        const failed = results.filter((r) => r.error !== undefined)
        if (failed.length > 0) process.exitCode = 1
        show(g, { users: results }, ({ users }) =>
          table(
            users,
            [
              { header: 'user', value: (r) => r.userId },
              { header: 'file', value: (r) => r.file },
              { header: 'snapshot', value: (r) => r.snapshot?.id },
              { header: 'restored', value: (r) => r.restore && `deleted ${r.restore.changed.deleted}, revived ${r.restore.changed.revived}, updated ${r.restore.changed.updated}` },
              { header: 'error', value: (r) => r.error },
            ],
            '(no files)',
          ) + `${users.length - failed.length} imported${opts.restore ? ' and restored' : ''}, ${failed.length} failed\n`,
        )
      }),
    )

  program
    .command('verify')
    .description('(server stopped) check that every document loads and its entity index agrees with it; exit 1 on any problem')
    .action(
      offline(false, async (mod, store, g) => {
        const report = await mod.verifyAll(store, (total) => progress('verifying', total))
        if (report.problems.length > 0) process.exitCode = 1
        show(g, report, (r) =>
          r.problems.map((p) => `${p.userId}: ${p.problem}\n`).join('') +
          `${r.checked} documents checked: ${r.problems.length === 0 ? 'no problems' : `${r.problems.length} problems`}\n`,
        )
      }),
    )

  program
    .command('offline-compact')
    .description('(server stopped) compact every user’s update log')
    .action(
      offline(false, async (mod, store, g) => {
        const results = await mod.compactAll(store, (total) => progress('compacting', total))
        const sum = (key: 'bytesBefore' | 'bytesAfter') => results.reduce((n, r) => n + r[key], 0)
        show(g, { users: results }, ({ users }) =>
          table(
            users,
            [
              { header: 'user', value: (r) => r.userId },
              { header: 'before', value: (r) => r.bytesBefore, right: true },
              { header: 'after', value: (r) => r.bytesAfter, right: true },
            ],
            '(no users)',
          ) + `${users.length} users: ${sum('bytesBefore')} -> ${sum('bytesAfter')} bytes\n`,
        )
      }),
    )

  return program
}

/** Prints what went wrong; returns the exit code. */
function report(err: unknown, json: boolean): number {
  if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2 // commander printed it
  if (err instanceof UsageError) {
    console.error(`admin: ${err.message}`)
    return 2
  }
  if (err instanceof AdminApiError) {
    console.error(json ? JSON.stringify(err.body) : `admin: ${err.code}: ${err.message} (HTTP ${err.status})`)
    return 1
  }
  if (err instanceof UnreachableError || err instanceof Error) {
    console.error(`admin: ${err.message}`)
    return 1
  }
  console.error(`admin: ${String(err)}`)
  return 1
}

const program = buildProgram()
program.parseAsync(process.argv).catch((err: unknown) => {
  process.exitCode = report(err, program.opts<Globals>().json === true)
})
