/**
 * Offline-first across app restarts: a device process edits while the server
 * is down, is killed, and a new process on the same local store still has
 * the edits, counts them as pending, and delivers them once the server is
 * back; the other devices receive them.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import path from 'node:path'
import { createInterface } from 'node:readline'
import { describe, expect, it } from 'vitest'
import { waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { allSynced, useClients } from './helpers/sdk.js'
import { removeDir, tempDir, tokenFor } from './helpers/server.js'

interface Step {
  step: string
  status: string
  pending: number
  clips: string[]
}

const SCRIPT = path.join(import.meta.dirname, 'helpers', 'sdk-device-process.mjs')

/** Runs the device script; resolves its JSON lines as they come. */
function deviceProcess(env: Record<string, string>) {
  const child = spawn(process.execPath, [SCRIPT], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]()
  return {
    child,
    async next(): Promise<Step> {
      const { value, done } = await lines.next()
      if (done) throw new Error(`the device process ended: ${stderr}`)
      return JSON.parse(value) as Step
    },
  }
}

describe('SDK offline across process restarts', () => {
  const t = useServer()
  const c = useClients()

  it('keeps edits made while the server is down across a client process restart, and delivers them after reconnect', async () => {
    const serverDir = await tempDir()
    const localDir = await tempDir('superclip-sdk-')
    try {
      const server = await t.start(serverDir)
      const port = Number(new URL(server.url).port)
      const token = await tokenFor('alice')
      const other = c.client({ url: server.url, token, deviceId: 'other' })
      await allSynced([other])
      await server.stop()

      const env = { SYNC_URL: server.url, TOKEN: token, DEVICE: 'laptop', DIR: path.join(localDir, 'store') }
      const first = deviceProcess({ ...env, MODE: 'edit', COUNT: '3' })
      const stored = await first.next()
      expect(stored).toMatchObject({ step: 'stored', pending: 3, clips: ['offline laptop 0', 'offline laptop 1', 'offline laptop 2'] })
      expect(stored.status).not.toBe('synced')
      first.child.kill('SIGKILL')
      await once(first.child, 'exit')

      await t.start(serverDir, { port })
      const second = deviceProcess({ ...env, MODE: 'sync' })
      expect(await second.next()).toMatchObject({ step: 'loaded', pending: 3, clips: stored.clips })
      expect(await second.next()).toMatchObject({ step: 'synced', pending: 0, status: 'synced' })
      const [code] = (await once(second.child, 'exit')) as [number]
      expect(code).toBe(0)

      // The device that stayed up reconnects by itself and receives them.
      await waitFor(() => other.clips.list().length === 3, 'the edits on the other device', 30_000)
      expect(other.clips.list().map((x) => x.content).sort()).toEqual(stored.clips)
      // And they are the server's: a new device gets them.
      const fresh = c.client({ url: t.server.url, token, deviceId: 'fresh' })
      await allSynced([fresh])
      expect(fresh.clips.list()).toHaveLength(3)
      // A third run of the device has nothing pending.
      const third = deviceProcess({ ...env, MODE: 'sync' })
      expect(await third.next()).toMatchObject({ step: 'loaded', pending: 0, clips: stored.clips })
      expect(await third.next()).toMatchObject({ step: 'synced', pending: 0, status: 'synced' })
      expect(await once(third.child, 'exit')).toEqual([0, null])
    } finally {
      await removeDir(localDir)
    }
  })

  it('refuses to open a local store that holds another user’s data', async () => {
    await t.start()
    const dir = path.join(await tempDir('superclip-sdk-'), 'store')
    try {
      const alice = c.client({ url: t.server.url, token: await tokenFor('alice'), deviceId: 'd', storage: { dir } })
      alice.clips.create({ content: 'alice only' })
      await allSynced([alice])
      await alice.close()
      const bob = c.client({ url: t.server.url, token: await tokenFor('bob'), deviceId: 'd', storage: { dir } })
      await expect(bob.ready).rejects.toMatchObject({ code: 'STORAGE', message: expect.stringContaining('user "alice"') })
      await expect(bob.whenSynced()).rejects.toMatchObject({ code: 'STORAGE' })
      expect(bob.clips.list()).toEqual([])
    } finally {
      await removeDir(path.dirname(dir))
    }
  })
})
