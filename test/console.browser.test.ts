/**
 * The operators' console (/console, web/console/) in a real browser:
 * playwright-core driving Debian's chromium against a real server with a live
 * Yjs device. Sign in, open alice, take a snapshot, change a clip on the
 * device, restore from the console after its dry run shows one change, and
 * the device gets the old title back. A PNG of each step is saved under
 * test/artifacts/console/.
 *
 * The console is built first (scripts/build-console.mjs, what `npm run build`
 * runs) into dist/console/, where the server reads it from whether it runs
 * built or, as here, from its sources. Without /usr/bin/chromium the test
 * fails (CI installs it: .ci/run).
 */
import { execFile } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import type { Browser, Page } from 'playwright-core'
import { launchChromium } from './helpers/chromium.js'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { AdminClient } from './helpers/admin-client.js'
import { waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'

const root = path.resolve(import.meta.dirname, '..')
const artifacts = path.join(root, 'test', 'artifacts', 'console')
const run = promisify(execFile)

describe('operators console in chromium', () => {
  const t = useServer()
  let browser: Browser | undefined
  let page: Page | undefined
  /** Console errors and uncaught exceptions in the page (a CSP violation is one). */
  const pageErrors: string[] = []

  beforeAll(async () => {
    await run(process.execPath, [path.join(root, 'scripts', 'build-console.mjs')], { cwd: root, timeout: 30_000 })
    await mkdir(artifacts, { recursive: true })
    browser = await launchChromium()
  })
  afterEach(async () => {
    await page?.close()
    page = undefined
  })
  afterAll(async () => {
    await browser?.close()
  })

  async function openConsole(url: string): Promise<Page> {
    if (!browser) throw new Error('chromium did not start')
    pageErrors.length = 0
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
    page.on('console', (m) => {
      if (m.type() === 'error') pageErrors.push(m.text())
    })
    page.on('pageerror', (err) => pageErrors.push(err.message))
    page.on('response', (r) => {
      if (r.status() >= 400 && !r.url().includes('/admin/')) pageErrors.push(`${r.status()} ${r.url()}`)
    })
    const reply = await page.goto(`${url}/console`)
    expect(reply?.status()).toBe(200)
    return page
  }

  const shot = async (p: Page, name: string) => {
    await p.screenshot({ path: path.join(artifacts, `${name}.png`), fullPage: true })
  }

  it('signs in, snapshots alice, and restores her after the dry run shows what will change', async () => {
    const server = await t.start()
    const phone = await t.device('alice', 'phone')
    phone.doc.transact(() => {
      const clip = new Y.Map<unknown>()
      phone.clips().set('c1', clip)
      clip.set('content', 'hello')
      clip.set('contentType', 'text')
      clip.set('createdAt', 1_700_000_000_000)
      clip.set('title', 'Original title')
    })
    await phone.flushed()
    const title = () => phone.clips().get('c1')?.get('title')

    const p = await openConsole(server.url)
    await p.locator('#token').waitFor()
    await shot(p, '1-sign-in')

    await p.locator('#token').fill(server.config.adminToken)
    await p.getByRole('button', { name: 'Sign in' }).click()
    const alice = p.locator('#users-rows').getByRole('button', { name: 'alice', exact: true })
    await alice.waitFor()
    // The charts sample /metrics every 2 s: the phone's socket is counted, and a rate needs two samples.
    await p.locator('#now-connections', { hasText: /^[1-9]\d*$/ }).waitFor()
    await p.locator('#now-writes', { hasText: /\d/ }).waitFor()
    await shot(p, '2-users')

    await alice.click()
    await p.locator('#device-rows tr', { hasText: 'phone' }).waitFor()
    await p.locator('#snapshot-rows', { hasText: 'No snapshots.' }).waitFor()
    await shot(p, '3-alice')

    await p.locator('#snapshot-label').fill('before the edit')
    await p.getByRole('button', { name: 'Take snapshot' }).click()
    const taken = p.locator('#snapshot-rows tr', { hasText: 'before the edit' })
    await taken.waitFor()
    await shot(p, '4-snapshot-taken')

    // The export is a download of the snapshot's Yjs update.
    const [download] = await Promise.all([p.waitForEvent('download'), taken.getByRole('button', { name: 'Export' }).click()])
    expect(download.suggestedFilename()).toMatch(/^alice-.+\.yjs$/)

    await phone.write(() => phone.clips().get('c1')?.set('title', 'Changed on the phone'))
    await phone.flushed()

    await taken.getByRole('button', { name: 'Restore…' }).click()
    const dialog = p.locator('#restore-dialog')
    await dialog.waitFor()
    expect(await p.locator('#restore-updated').textContent()).toBe('1')
    expect(await p.locator('#restore-deleted').textContent()).toBe('0')
    expect(await p.locator('#restore-revived').textContent()).toBe('0')
    expect(await dialog.textContent()).toContain('Changed since')
    expect(title()).toBe('Changed on the phone') // a dry run changes nothing
    await shot(p, '5-restore-confirm')

    await dialog.getByRole('button', { name: 'Restore' }).click()
    await p.locator('#status', { hasText: 'alice restored: 0 deleted, 0 revived, 1 changed' }).waitFor()
    await waitFor(() => title() === 'Original title', "the old title back on alice's phone")
    await p.locator('#snapshot-rows tr', { hasText: 'before-restore' }).waitFor()
    await shot(p, '6-restored')

    const snapshots = await new AdminClient(server.url, server.config.adminToken).get<{ snapshots: { reason: string }[] }>('/admin/users/alice/snapshots')
    expect(snapshots.body.snapshots.map((s) => s.reason)).toEqual(['before-restore', 'manual'])
    expect(pageErrors).toEqual([])
  })

  it('a wrong token is refused and the sign-in form stays', async () => {
    const server = await t.start()
    const p = await openConsole(server.url)
    await p.locator('#token').fill('not-the-token')
    await p.getByRole('button', { name: 'Sign in' }).click()
    await p.locator('#status', { hasText: 'refused the admin token' }).waitFor()
    expect(await p.locator('#console').isHidden()).toBe(true)
    expect(await p.evaluate("sessionStorage.getItem('superclip.adminToken')")).toBeNull()
  })
})

describe('console routes', () => {
  const t = useServer()

  it('are public, hidden from the OpenAPI document, and serve only the built files', async () => {
    const server = await t.start()
    const openapi = await new AdminClient(server.url, server.config.adminToken).get<{ paths: Record<string, unknown> }>('/admin/openapi.json')
    expect(Object.keys(openapi.body.paths).filter((p) => p.startsWith('/console'))).toEqual([])
    expect(Object.keys(openapi.body.paths)).toContain('/admin/users')
    for (const bad of ['/console/..%2Fpackage.json', '/console/%2E%2E', '/console/nope.js', '/console/main.ts', '/console/.tsbuildinfo']) {
      const res = await fetch(`${server.url}${bad}`)
      expect(res.status, bad).toBe(404)
    }
  })
})
