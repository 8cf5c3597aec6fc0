/**
 * The web client (/app/, web/app/) in a real browser: playwright-core driving
 * Debian's chromium against a real server. Each page is its own browser
 * context, so its own IndexedDB, localStorage (deviceId) and service worker:
 * two devices of one user.
 *
 * - live: a clip made on one page is on the other within a second; folders,
 *   tags, an edit (folder, tags, pinned, title) and a delete follow too.
 * - offline: a page set offline (the badge says so) edits, is reloaded while
 *   offline (the page from the service worker's cache, the clips from
 *   IndexedDB) and still shows its edits; back online, the other page gets
 *   them and the badge returns to synced with nothing pending.
 * - conflict: both pages write a clip's content, one while offline; the
 *   server's conflict is in both panels with both values and devices; merged
 *   from one page, both panels empty and both pages show the merged content.
 *
 * A PNG of each step is saved as test/artifacts/app-<scenario>-<step>.png.
 * The app is built first (scripts/build-app.mjs, what `npm run build` runs)
 * into dist/app/, where the server reads it from whether it runs built or,
 * as here, from its sources. Without /usr/bin/chromium the test fails (CI
 * installs it: .ci/run).
 */
import { execFile } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import type { Browser, BrowserContext, Locator, Page } from 'playwright-core'
import { launchChromium } from './helpers/chromium.js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { useServer } from './helpers/fixture.js'
import { tokenFor } from './helpers/server.js'

const root = path.resolve(import.meta.dirname, '..')
const artifacts = path.join(root, 'test', 'artifacts')
const run = promisify(execFile)

// The SDK in client/dist is built by the global setup (test/global-setup.ts); the app from it here.
beforeAll(async () => {
  await run(process.execPath, [path.join(root, 'scripts', 'build-app.mjs')], { cwd: root, timeout: 30_000 })
})

/** One signed-in page: a device of the user, in its own browser context. */
class AppPage {
  /** Console errors, uncaught exceptions and failed responses of the page while online (a CSP violation is one). */
  readonly errors: string[] = []
  deviceId = ''

  constructor(
    readonly name: string,
    readonly context: BrowserContext,
    readonly page: Page,
  ) {
    // Offline, the failed fetches (the service worker's update check, its network-first tries) are expected.
    let offline = false
    const online = (): boolean => !offline
    this.setOffline = async (value: boolean) => {
      offline = value
      await context.setOffline(value)
    }
    page.on('console', (m) => m.type() === 'error' && online() && this.errors.push(m.text()))
    page.on('pageerror', (err) => this.errors.push(err.message))
    page.on('response', (r) => r.status() >= 400 && this.errors.push(`${r.status()} ${r.url()}`))
  }

  readonly setOffline: (offline: boolean) => Promise<void>

  get badge(): Locator {
    return this.page.getByTestId('status')
  }

  /** Waits until the badge shows `status` (and `pending` edits, when given). */
  async status(status: string, pending?: number, timeout?: number): Promise<void> {
    const count = pending === undefined ? '' : `[data-pending="${pending}"]`
    await this.page.locator(`[data-testid="status"][data-status="${status}"]${count}`).waitFor(timeout === undefined ? {} : { timeout })
  }

  clips(): Locator {
    return this.page.getByTestId('clip')
  }

  /** The clip whose content is exactly `content`. */
  clip(content: string): Locator {
    return this.clips().filter({ has: this.page.getByTestId('clip-content').getByText(content, { exact: true }) })
  }

  /** Adds a clip with the form; done once the form is cleared (the SDK has stored the clip). */
  async addClip(content: string, title?: string): Promise<void> {
    if (title !== undefined) await this.page.getByTestId('new-clip-title').fill(title)
    await this.page.getByTestId('new-clip-content').fill(content)
    await this.page.getByTestId('new-clip-submit').click()
    await this.page.locator('[data-testid="new-clip-content"]:placeholder-shown').waitFor()
    await this.clip(content).waitFor()
  }

  /** Opens the clip's editor, lets `edit` fill it, saves; done once the editor closed (stored). */
  async editClip(content: string, edit: (editor: Locator) => Promise<void>): Promise<void> {
    const row = this.clip(content)
    await row.getByTestId('clip-edit').click()
    const editor = this.page.getByTestId('clip-editor')
    await edit(editor)
    await editor.getByTestId('clip-save').click()
    await editor.waitFor({ state: 'detached' })
  }

  async label(kind: 'folder' | 'tag', name: string): Promise<void> {
    await this.page.getByTestId(`new-${kind}-name`).fill(name)
    await this.page.getByTestId(`new-${kind}-submit`).click()
    await this.page.getByTestId(kind).filter({ hasText: name }).waitFor()
  }

  conflicts(): Locator {
    return this.page.getByTestId('conflict')
  }

  async shot(scenario: string, step: string): Promise<void> {
    await this.page.screenshot({ path: path.join(artifacts, `app-${scenario}-${step}-${this.name}.png`), fullPage: true })
  }
}

describe('web client in chromium', () => {
  const t = useServer()
  let browser: Browser | undefined
  const contexts: BrowserContext[] = []

  beforeAll(async () => {
    await mkdir(artifacts, { recursive: true })
    browser = await launchChromium()
  })
  afterEach(async () => {
    await Promise.all(contexts.splice(0).map((c) => c.close()))
  })
  afterAll(async () => {
    await browser?.close()
  })

  /** A new device of `userId`: a fresh browser context at /app/, signed in with a pasted token, synced, its service worker in control. */
  async function open(name: string, userId = 'alice'): Promise<AppPage> {
    if (!browser) throw new Error('chromium did not start')
    const context = await browser.newContext({ viewport: { width: 1100, height: 800 } })
    context.setDefaultTimeout(10_000)
    contexts.push(context)
    const app = new AppPage(name, context, await context.newPage())
    const reply = await app.page.goto(`${t.server.url}/app/`)
    expect(reply?.status()).toBe(200)
    await app.page.getByTestId('token').fill(await tokenFor(userId))
    await app.page.getByTestId('sign-in-submit').click()
    await app.status('synced', 0)
    // The shell is cached once the worker controls the page (it claims it after installing).
    // A function, not a string: Playwright polls a string predicate with eval, which the app's CSP refuses
    // whenever the first check is false (the worker not controlling yet).
    type WithWorker = { navigator: { serviceWorker: { controller: unknown } } }
    await app.page.waitForFunction(() => (globalThis as unknown as WithWorker).navigator.serviceWorker.controller !== null)
    app.deviceId = (await app.page.evaluate<string | null>("localStorage.getItem('superclip.deviceId')")) ?? ''
    expect(app.deviceId).toMatch(/^web-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    return app
  }

  it('live: a clip made on one page is on the other within a second; labels, edits and deletes follow', async () => {
    await t.start()
    const [phone, laptop] = [await open('phone'), await open('laptop')]
    expect(phone.deviceId).not.toBe(laptop.deviceId)
    await phone.shot('live', '1-signed-in')

    await phone.addClip('milk, eggs, bread', 'Shopping')
    await laptop.clip('milk, eggs, bread').waitFor({ timeout: 1000 })
    expect(await laptop.clip('milk, eggs, bread').getByTestId('clip-title').textContent()).toBe('Shopping')
    await laptop.shot('live', '2-received')

    // Newest first.
    await laptop.addClip('https://example.com/recipe')
    await phone.clip('https://example.com/recipe').waitFor()
    expect(await phone.clips().getByTestId('clip-content').allTextContents()).toEqual(['https://example.com/recipe', 'milk, eggs, bread'])

    // Folders and tags made on one page; the clip filed and tagged on the other.
    await phone.label('folder', 'Home')
    await phone.label('tag', 'groceries')
    await phone.label('tag', 'weekly')
    await laptop.page.getByTestId('tag').filter({ hasText: 'weekly' }).waitFor()
    await laptop.editClip('milk, eggs, bread', async (editor) => {
      await editor.getByTestId('clip-edit-title').fill('Saturday shopping')
      await editor.getByTestId('clip-edit-folder').selectOption({ label: 'Home' })
      await editor.getByTitle('groceries').check()
      await editor.getByTestId('clip-edit-pinned').check()
    })
    const filed = phone.clip('milk, eggs, bread')
    await filed.getByTestId('clip-pinned').waitFor()
    expect(await filed.getByTestId('clip-title').textContent()).toBe('Saturday shopping')
    expect(await filed.getByTestId('clip-folder').textContent()).toBe('Home')
    expect(await filed.getByTestId('clip-tag').allTextContents()).toEqual(['groceries'])
    await phone.shot('live', '3-edited-elsewhere')

    // Renamed on the laptop: the phone's panel and the clip's chip follow.
    const home = laptop.page.getByTestId('folder').filter({ hasText: 'Home' })
    await home.getByTestId('folder-rename').click()
    await laptop.page.getByTestId('folder-rename-name').fill('House')
    await laptop.page.getByTestId('folder-rename-save').click()
    await filed.getByTestId('clip-folder').filter({ hasText: 'House' }).waitFor()
    await phone.page.getByTestId('folder').filter({ hasText: 'House' }).waitFor()

    // Deleted on the phone: gone on the laptop; the tag deleted too.
    await phone.clip('https://example.com/recipe').getByTestId('clip-delete').click()
    await phone.page.getByTestId('tag').filter({ hasText: 'weekly' }).getByTestId('tag-delete').click()
    await laptop.clip('https://example.com/recipe').waitFor({ state: 'detached' })
    await laptop.page.getByTestId('tag').filter({ hasText: 'weekly' }).waitFor({ state: 'detached' })
    expect(await laptop.clips().count()).toBe(1)
    await laptop.shot('live', '4-deleted-elsewhere')

    expect(phone.errors).toEqual([])
    expect(laptop.errors).toEqual([])
  })

  it('offline: edits are kept across an offline reload and reach the other page once online', async () => {
    await t.start()
    const [phone, laptop] = [await open('phone'), await open('laptop')]
    await phone.addClip('to be renamed offline', 'Old title')
    await laptop.clip('to be renamed offline').waitFor()

    await phone.setOffline(true)
    await phone.status('offline', 0)
    expect(await phone.badge.textContent()).toBe('offline')
    await phone.shot('offline', '1-offline')

    await phone.addClip('written offline', 'Offline note')
    await phone.editClip('to be renamed offline', (editor) => editor.getByTestId('clip-edit-title').fill('New title'))
    await phone.status('offline', 2)
    expect(await phone.badge.textContent()).toBe('offline · 2 pending')
    await phone.shot('offline', '2-edited-offline')

    // Reloaded while offline: the page from the service worker's cache, the document and the pending count from IndexedDB.
    const reply = await phone.page.reload()
    expect(reply?.fromServiceWorker()).toBe(true)
    await phone.clip('written offline').waitFor()
    expect(await phone.clip('to be renamed offline').getByTestId('clip-title').textContent()).toBe('New title')
    await phone.status('offline', 2)
    expect(await phone.page.evaluate('navigator.onLine')).toBe(false)
    await phone.shot('offline', '3-reloaded-offline')
    // Nothing reached the laptop meanwhile.
    expect(await laptop.clip('written offline').count()).toBe(0)
    expect(await laptop.clip('to be renamed offline').getByTestId('clip-title').textContent()).toBe('Old title')

    await phone.setOffline(false)
    await laptop.clip('written offline').waitFor()
    await laptop.clip('to be renamed offline').getByTestId('clip-title').filter({ hasText: 'New title' }).waitFor()
    await phone.status('synced', 0)
    expect(await phone.badge.textContent()).toBe('synced')
    await phone.shot('offline', '4-back-online')
    await laptop.shot('offline', '4-back-online')

    expect(phone.errors).toEqual([])
    expect(laptop.errors).toEqual([])
  })

  it('conflict: content written on both pages is a conflict in both panels; merged from one, both show the result', async () => {
    await t.start()
    const [phone, laptop] = [await open('phone'), await open('laptop')]
    await phone.addClip('the original text', 'Draft')
    await laptop.clip('the original text').waitFor()
    expect(await phone.page.getByTestId('conflicts').isHidden()).toBe(true)

    // The phone edits offline; the laptop edits the same content online first: the phone's write did not see it.
    await phone.setOffline(true)
    await phone.status('offline')
    await phone.editClip('the original text', (editor) => editor.getByTestId('clip-edit-content').fill('written on the phone'))
    await laptop.editClip('the original text', (editor) => editor.getByTestId('clip-edit-content').fill('written on the laptop'))
    await laptop.status('synced', 0)
    await phone.setOffline(false)
    await phone.status('synced', 0)

    for (const app of [phone, laptop]) {
      const conflict = app.conflicts()
      await conflict.waitFor()
      expect(await conflict.count()).toBe(1)
      expect(await conflict.getByTestId('conflict-entity').textContent()).toBe('clip “Draft”')
      expect(await conflict.getByTestId('conflict-field').textContent()).toBe('content')
      expect(await conflict.getByTestId('conflict-server-value').textContent()).toBe('written on the laptop')
      expect(await conflict.getByTestId('conflict-server-device').textContent()).toContain(laptop.deviceId)
      expect(await conflict.getByTestId('conflict-client-value').textContent()).toBe('written on the phone')
      expect(await conflict.getByTestId('conflict-client-device').textContent()).toContain(phone.deviceId)
      expect(await conflict.getByTestId('conflict-keep-client').isEnabled()).toBe(true)
      // The server kept its value: both pages show the laptop's.
      await app.clip('written on the laptop').waitFor()
      await app.shot('conflict', '1-raised')
    }

    await laptop.conflicts().getByTestId('conflict-merge').click()
    const merged = laptop.conflicts().getByTestId('conflict-merged-value')
    expect(await merged.inputValue()).toBe('written on the phone')
    await merged.fill('written on the phone, then the laptop')
    await laptop.shot('conflict', '2-merging')
    await laptop.conflicts().getByTestId('conflict-save-merged').click()

    for (const app of [phone, laptop]) {
      await app.clip('written on the phone, then the laptop').waitFor()
      await app.page.getByTestId('conflicts').waitFor({ state: 'hidden' })
      expect(await app.conflicts().count()).toBe(0)
      await app.status('synced', 0)
      await app.shot('conflict', '3-resolved')
    }
    expect(phone.errors).toEqual([])
    expect(laptop.errors).toEqual([])
  })

  it('sign-in is remembered across loads, sign-out forgets the token but not the device, and bad tokens are refused', async () => {
    await t.start()
    const phone = await open('phone')
    await phone.addClip('kept in this browser')
    await phone.page.reload()
    await phone.status('synced', 0)
    await phone.clip('kept in this browser').waitFor()

    await phone.page.getByTestId('sign-out').click()
    await phone.page.getByTestId('sign-in').waitFor()
    expect(await phone.page.evaluate("localStorage.getItem('superclip.deviceToken')")).toBeNull()
    expect(await phone.page.evaluate("localStorage.getItem('superclip.deviceId')")).toBe(phone.deviceId)
    expect(await phone.page.getByTestId('app').isHidden()).toBe(true)

    await phone.page.getByTestId('token').fill('not-a-token')
    await phone.page.getByTestId('sign-in-submit').click()
    await phone.page.getByTestId('message').filter({ hasText: 'not a device token' }).waitFor()
    expect(await phone.page.getByTestId('sign-in').isVisible()).toBe(true)
    expect(await phone.page.evaluate("localStorage.getItem('superclip.deviceToken')")).toBeNull()
    await phone.shot('session', '1-not-a-token')
    expect(phone.errors).toEqual([])

    // A token the server refuses (its signature broken): said so, and the client stops trying.
    const token = await tokenFor('mallory')
    await phone.page.getByTestId('token').fill(`${token.slice(0, -6)}AAAAAA`)
    await phone.page.getByTestId('sign-in-submit').click()
    await phone.page.getByTestId('message').filter({ hasText: 'The server refused this device (UNAUTHORIZED' }).waitFor()
    await phone.status('offline', 0)
    await phone.shot('session', '2-refused-by-server')
  })
})

describe('app routes', () => {
  const t = useServer()

  it('serve the built files with a CSP for the page, its socket and its worker, and nothing else', async () => {
    const server = await t.start()
    const redirect = await fetch(`${server.url}/app`, { redirect: 'manual' })
    expect(redirect.status).toBe(302)
    expect(redirect.headers.get('location')).toBe('/app/')
    for (const file of ['/app/', '/app/main.js', '/app/main.css', '/app/sw.js']) {
      const res = await fetch(`${server.url}${file}`)
      expect(res.status, file).toBe(200)
      expect(res.headers.get('content-security-policy'), file).toContain("connect-src 'self'")
      expect(res.headers.get('cache-control'), file).toBe('no-cache')
    }
    for (const bad of ['/app/..%2Fpackage.json', '/app/%2E%2E', '/app/nope.js', '/app/main.ts', '/app/.tsbuildinfo']) {
      const res = await fetch(`${server.url}${bad}`)
      expect(res.status, bad).toBe(404)
    }
  })
})
