/**
 * The operators' web console (docs/operations.md, "Console"): sign in with
 * the admin token, browse users, and for one user manage devices
 * (disconnect, revoke), snapshots (take, export, restore after a dry run
 * shows what will change) and the trash; live charts of the server's
 * metrics above. Plain DOM: every value is set as text, never as HTML.
 */
import { adminToken, ApiError, json, request, userPath, whenUnauthorized } from './api.js'
import type { Device, RestoreReply, SnapshotMeta, TrashEntity, UserSummary, UsersPage } from './api.js'
import { LiveCharts } from './metrics.js'

const USERS_PER_PAGE = 50

function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const el = document.getElementById(id)
  if (!(el instanceof type)) throw new Error(`#${id} is missing from the page`)
  return el
}

type Child = Node | string | null | undefined | false
/** An element with `props` set and `children` appended (strings as text). */
function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = Object.assign(document.createElement(tag), props)
  for (const child of children) if (child !== null && child !== undefined && child !== false) el.append(child)
  return el
}

const ui = {
  status: byId('status', HTMLElement),
  signIn: byId('sign-in', HTMLFormElement),
  token: byId('token', HTMLInputElement),
  signOut: byId('sign-out', HTMLButtonElement),
  console: byId('console', HTMLElement),
  usersRows: byId('users-rows', HTMLTableSectionElement),
  usersRefresh: byId('users-refresh', HTMLButtonElement),
  usersPrev: byId('users-prev', HTMLButtonElement),
  usersNext: byId('users-next', HTMLButtonElement),
  user: byId('user', HTMLElement),
  userTitle: byId('user-title', HTMLElement),
  userSummary: byId('user-summary', HTMLElement),
  deviceRows: byId('device-rows', HTMLTableSectionElement),
  snapshotForm: byId('snapshot-form', HTMLFormElement),
  snapshotLabel: byId('snapshot-label', HTMLInputElement),
  snapshotRows: byId('snapshot-rows', HTMLTableSectionElement),
  trashRows: byId('trash-rows', HTMLTableSectionElement),
  restoreDialog: byId('restore-dialog', HTMLDialogElement),
  restoreUser: byId('restore-user', HTMLElement),
  restoreWhen: byId('restore-when', HTMLElement),
  restoreDeleted: byId('restore-deleted', HTMLElement),
  restoreRevived: byId('restore-revived', HTMLElement),
  restoreUpdated: byId('restore-updated', HTMLElement),
}

// ---- formatting

const time = (ms: number | null): string => (ms === null || ms <= 0 ? '—' : new Date(ms).toLocaleString())

function bytes(n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`
  return `${(n / 1024 ** 2).toFixed(1)} MB`
}

/** The total of live entities, each type in the cell's tooltip. */
function entities(counts: Record<string, number>): HTMLTableCellElement {
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  const detail = Object.entries(counts)
    .filter(([, n]) => n > 0)
    .map(([type, n]) => `${type} ${n}`)
    .join(', ')
  return h('td', { textContent: String(total), title: detail })
}

function say(message: string, kind: 'info' | 'error' = 'info'): void {
  ui.status.textContent = message
  ui.status.className = kind
}

const errorText = (err: unknown): string => (err instanceof ApiError ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err))

/** A button that runs `run` once per click, disabled meanwhile; a failure is shown in the status line. */
function button(label: string, run: () => Promise<void>, props: Partial<HTMLButtonElement> = {}): HTMLButtonElement {
  const b = h('button', { type: 'button', textContent: label, ...props })
  b.addEventListener('click', () => {
    b.disabled = true
    run()
      .catch((err: unknown) => say(errorText(err), 'error'))
      .finally(() => (b.disabled = props.disabled ?? false))
  })
  return b
}

function emptyRow(tbody: HTMLTableSectionElement, columns: number, text: string): void {
  tbody.replaceChildren(h('tr', {}, h('td', { colSpan: columns, className: 'empty', textContent: text })))
}

/** The user whose devices, snapshots and trash are shown. */
let current: string | undefined

// ---- sign-in

const charts = new LiveCharts(
  {
    writes: { chart: byId('chart-writes', HTMLElement), readout: byId('now-writes', HTMLElement) },
    connections: { chart: byId('chart-connections', HTMLElement), readout: byId('now-connections', HTMLElement) },
    delay: { chart: byId('chart-delay', HTMLElement), readout: byId('now-delay', HTMLElement) },
  },
  (message) => say(message, 'error'),
)

function showSignedIn(signedIn: boolean): void {
  ui.signIn.hidden = signedIn
  ui.signOut.hidden = !signedIn
  ui.console.hidden = !signedIn
}

function signOut(message = ''): void {
  adminToken.clear()
  charts.stop()
  current = undefined
  ui.user.hidden = true
  showSignedIn(false)
  say(message, message === '' ? 'info' : 'error')
  ui.token.focus()
}

async function signIn(token: string): Promise<void> {
  adminToken.set(token)
  pages = [undefined]
  await loadUsers() // a refused token signs out (whenUnauthorized)
  showSignedIn(true)
  say('')
  charts.start()
}

whenUnauthorized(() => signOut('The server refused the admin token.'))
/** A refused token has signed out already (whenUnauthorized); anything else is shown. */
const signInFailed = (err: unknown): void => {
  if (!(err instanceof ApiError && err.status === 401)) say(errorText(err), 'error')
}

ui.signIn.addEventListener('submit', (event) => {
  event.preventDefault()
  const token = ui.token.value.trim()
  ui.token.value = ''
  signIn(token).catch(signInFailed)
})
ui.signOut.addEventListener('click', () => signOut())

// ---- users

/** The cursor of each page seen (undefined for the first); the last one is shown. */
let pages: (string | undefined)[] = [undefined]
let nextCursor: string | null = null

async function loadUsers(): Promise<void> {
  const cursor = pages.at(-1)
  const query = new URLSearchParams({ limit: String(USERS_PER_PAGE) })
  if (cursor !== undefined) query.set('cursor', cursor)
  const page = await json<UsersPage>('GET', `/admin/users?${query.toString()}`)
  nextCursor = page.cursor
  ui.usersPrev.disabled = pages.length <= 1
  ui.usersNext.disabled = nextCursor === null
  if (page.users.length === 0) return emptyRow(ui.usersRows, 5, 'No users yet.')
  ui.usersRows.replaceChildren(...page.users.map(userRow))
}

function userRow(u: UserSummary): HTMLTableRowElement {
  const open = h('button', { type: 'button', className: 'link', textContent: u.userId, title: `Open ${u.userId}` })
  open.addEventListener('click', () => void openUser(u.userId))
  return h(
    'tr',
    { className: u.userId === current ? 'selected' : '' },
    h('td', {}, open),
    h('td', { textContent: bytes(u.bytes) }),
    entities(u.entityCounts),
    h('td', { textContent: String(u.devicesConnected) }),
    h('td', { textContent: time(u.lastActivityAt) }),
  )
}

const run = (work: () => Promise<void>) => () => void work().catch((err: unknown) => say(errorText(err), 'error'))
ui.usersRefresh.addEventListener('click', run(loadUsers))
ui.usersPrev.addEventListener(
  'click',
  run(async () => {
    if (pages.length > 1) pages.pop()
    await loadUsers()
  }),
)
ui.usersNext.addEventListener(
  'click',
  run(async () => {
    if (nextCursor === null) return
    pages.push(nextCursor)
    await loadUsers()
  }),
)

// ---- one user

async function openUser(userId: string): Promise<void> {
  current = userId
  ui.user.hidden = false
  ui.userTitle.textContent = userId
  for (const row of ui.usersRows.rows) row.classList.toggle('selected', row.cells[0]?.textContent === userId)
  try {
    await Promise.all([loadSummary(userId), loadDevices(userId), loadSnapshots(userId), loadTrash(userId)])
  } catch (err) {
    say(errorText(err), 'error')
  }
}

async function loadSummary(userId: string): Promise<void> {
  const u = await json<UserSummary>('GET', userPath(userId))
  const counts = Object.entries(u.entityCounts)
    .filter(([, n]) => n > 0)
    .map(([type, n]) => `${n} ${type}${n === 1 ? '' : 's'}`)
  ui.userSummary.textContent = `${bytes(u.bytes)} stored · ${counts.join(', ') || 'no entities'} · ${u.devicesConnected} connected · last activity ${time(u.lastActivityAt)}`
}

async function loadDevices(userId: string): Promise<void> {
  const { devices } = await json<{ devices: Device[] }>('GET', userPath(userId, '/devices'))
  if (devices.length === 0) return emptyRow(ui.deviceRows, 5, 'No devices.')
  ui.deviceRows.replaceChildren(...devices.map((d) => deviceRow(userId, d)))
}

function deviceRow(userId: string, d: Device): HTMLTableRowElement {
  const path = userPath(userId, `/devices/${encodeURIComponent(d.deviceId)}`)
  const afterwards = async (message: string) => {
    say(message)
    await loadDevices(userId)
  }
  return h(
    'tr',
    {},
    h('td', { textContent: d.deviceId }),
    h('td', { textContent: d.connected ? 'yes' : 'no' }),
    h('td', { textContent: time(d.lastSeenAt) }),
    h('td', { textContent: d.revoked ? 'revoked' : '' }),
    h(
      'td',
      { className: 'actions' },
      button('Disconnect', async () => {
        await request('POST', `${path}/disconnect`)
        await afterwards(`${d.deviceId} disconnected.`)
      }, { disabled: !d.connected }),
      d.revoked
        ? button('Unrevoke', async () => {
            await request('DELETE', `${path}/revoke`)
            await afterwards(`${d.deviceId} may connect again.`)
          })
        : button('Revoke', async () => {
            if (!confirm(`Revoke ${d.deviceId}? It is disconnected and refused until unrevoked.`)) return
            await request('POST', `${path}/revoke`)
            await afterwards(`${d.deviceId} revoked.`)
          }),
    ),
  )
}

async function loadSnapshots(userId: string): Promise<void> {
  const { snapshots } = await json<{ snapshots: SnapshotMeta[] }>('GET', userPath(userId, '/snapshots'))
  if (snapshots.length === 0) return emptyRow(ui.snapshotRows, 6, 'No snapshots.')
  ui.snapshotRows.replaceChildren(...snapshots.map((s) => snapshotRow(userId, s)))
}

function snapshotRow(userId: string, s: SnapshotMeta): HTMLTableRowElement {
  return h(
    'tr',
    {},
    h('td', { textContent: time(s.takenAt), title: s.id }),
    h('td', { textContent: s.reason }),
    h('td', { textContent: s.label ?? '' }),
    h('td', { textContent: bytes(s.bytes) }),
    entities(s.entityCounts),
    h(
      'td',
      { className: 'actions' },
      button('Export', () => exportSnapshot(userId, s)),
      button('Restore…', () => restoreSnapshot(userId, s)),
    ),
  )
}

ui.snapshotForm.addEventListener('submit', (event) => {
  event.preventDefault()
  const userId = current
  if (userId === undefined) return
  const label = ui.snapshotLabel.value.trim()
  const submit = ui.snapshotForm.querySelector('button')
  if (submit) submit.disabled = true
  json<SnapshotMeta>('POST', userPath(userId, '/snapshots'), label === '' ? {} : { label })
    .then(async (taken) => {
      ui.snapshotLabel.value = ''
      say(`Snapshot of ${userId} taken (${taken.id}).`)
      await loadSnapshots(userId)
    })
    .catch((err: unknown) => say(errorText(err), 'error'))
    .finally(() => {
      if (submit) submit.disabled = false
    })
})

/** Downloads the snapshot's Yjs update (fetched with the token, saved through an object URL). */
async function exportSnapshot(userId: string, s: SnapshotMeta): Promise<void> {
  const res = await request('GET', userPath(userId, `/snapshots/${encodeURIComponent(s.id)}/export`))
  const named = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1]
  const url = URL.createObjectURL(await res.blob())
  const a = h('a', { href: url, download: named ?? `${userId}-${s.id}.yjs` })
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 10_000)
}

/** Asks the server what a restore would change (dry run), shows it, and restores on confirmation. */
async function restoreSnapshot(userId: string, s: SnapshotMeta): Promise<void> {
  const dry = await json<RestoreReply>('POST', userPath(userId, '/restore'), { snapshotId: s.id, dryRun: true })
  ui.restoreUser.textContent = userId
  ui.restoreWhen.textContent = `${time(s.takenAt)}${s.label === undefined ? '' : ` (“${s.label}”)`}`
  ui.restoreDeleted.textContent = String(dry.changed.deleted)
  ui.restoreRevived.textContent = String(dry.changed.revived)
  ui.restoreUpdated.textContent = String(dry.changed.updated)
  if (!(await confirmed(ui.restoreDialog))) return say('Restore cancelled.')
  const done = await json<RestoreReply>('POST', userPath(userId, '/restore'), { snapshotId: s.id })
  const { deleted, revived, updated } = done.changed
  say(`${userId} restored: ${deleted} deleted, ${revived} revived, ${updated} changed. The content before is kept in snapshot ${done.snapshotBefore ?? '—'}.`)
  await Promise.all([openUser(userId), loadUsers()])
}

/** Shows the modal dialog; true when it was closed with its `confirm` button. */
function confirmed(dialog: HTMLDialogElement): Promise<boolean> {
  dialog.returnValue = ''
  dialog.showModal()
  return new Promise((resolve) => dialog.addEventListener('close', () => resolve(dialog.returnValue === 'confirm'), { once: true }))
}

async function loadTrash(userId: string): Promise<void> {
  const { entities: trashed } = await json<{ entities: TrashEntity[] }>('GET', userPath(userId, '/trash'))
  if (trashed.length === 0) return emptyRow(ui.trashRows, 5, 'The trash is empty.')
  ui.trashRows.replaceChildren(
    ...trashed.map((e) =>
      h(
        'tr',
        {},
        h('td', { textContent: e.entityType }),
        h('td', { textContent: e.entityId }),
        h('td', { textContent: time(e.deletedAt) }),
        h('td', { textContent: e.deviceId }),
        h(
          'td',
          { className: 'actions' },
          button('Restore', async () => {
            await json('POST', userPath(userId, '/trash/restore'), { entityType: e.entityType, entityId: e.entityId })
            say(`${e.entityType} ${e.entityId} restored from the trash.`)
            await Promise.all([loadTrash(userId), loadSummary(userId)])
          }),
        ),
      ),
    ),
  )
}

// ---- start

const saved = adminToken.get()
if (saved === null) signOut()
else signIn(saved).catch(signInFailed)
