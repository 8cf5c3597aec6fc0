/**
 * The README's snippets run as written: its `<!-- file: NAME -->` code blocks
 * are saved under test/artifacts/ and run with Node against a real server
 * (the SDK device imports the workspace package, as an app would), and the commands
 * and links it names exist.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import path from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { useServer } from './helpers/fixture.js'
import { tokenFor } from './helpers/server.js'

const run = promisify(execFile)
const root = path.resolve(import.meta.dirname, '..')
const readme = await readFile(path.join(root, 'README.md'), 'utf8')

/** The README's `<!-- file: NAME -->` blocks by name. */
function snippets(): Map<string, string> {
  const files = new Map<string, string>()
  for (const m of readme.matchAll(/<!-- file: (\S+) -->\n```\w*\n([\s\S]*?)\n```/g)) files.set(m[1] as string, `${m[2] as string}\n`)
  return files
}

describe('README', () => {
  const t = useServer()
  const dir = path.join(root, 'test', 'artifacts', `readme-${process.pid}`)

  beforeAll(async () => {
    await mkdir(dir, { recursive: true })
    for (const [name, code] of snippets()) await writeFile(path.join(dir, name), code)
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('has the SDK device and HTTP snippets', () => {
    expect([...snippets().keys()].sort()).toEqual(['device.mjs', 'http-sync.mjs'])
  })

  it('the SDK device and the HTTP client run as written and see each other', async () => {
    const server = await t.start()
    const env = { ...process.env, TOKEN: await tokenFor('alice'), SYNC_URL: server.url }
    const node = (file: string, extra: Record<string, string> = {}) => run(process.execPath, [file], { cwd: dir, env: { ...env, ...extra }, timeout: 20_000 })

    expect((await node('device.mjs')).stdout).toBe('pending: 1\n1 clips, the newest saved on the server\n')
    expect((await node('device.mjs')).stdout).toBe('pending: 1\n2 clips, the newest saved on the server\n')
    const http = await node('http-sync.mjs')
    expect(http.stdout).toContain('ok: true')
    expect(http.stdout.match(/^create /gm)).toHaveLength(3)
    expect(http.stdout).toContain('Hello over HTTP')
    // The device's next run has its two clips from its local store and the HTTP one from the server.
    expect((await node('device.mjs')).stdout).toBe('pending: 1\n4 clips, the newest saved on the server\n')
  })

  it("the quick start's token command prints the token alone, as TOKEN=$(npm run -s token -- alice) needs", async () => {
    expect(readme).toContain('TOKEN=$(npm run -s token -- alice)')
    const dataDir = path.join(dir, 'data')
    const { stdout } = await run('npm', ['run', '-s', 'token', '--', 'alice'], { cwd: root, env: { ...process.env, DATA_DIR: dataDir, JWT_SECRET: '' }, timeout: 60_000 })
    expect(stdout).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/)
  })

  it('names only npm scripts that exist, files that exist, and the quick start', async () => {
    const { scripts } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    for (const [, name] of readme.matchAll(/npm run (?:-s )?([\w:-]+)/g)) expect(Object.keys(scripts), `npm run ${name}`).toContain(name)
    for (const [, link] of readme.matchAll(/\]\(((?!https?:)[^)#]+)(?:#[^)]*)?\)/g)) expect(existsSync(path.join(root, link as string)), link).toBe(true)
    expect(readme).toContain('npm ci && npm start')
    expect(readme).toContain('npm test')
    expect(readme).not.toContain('../shared')
  })
})
