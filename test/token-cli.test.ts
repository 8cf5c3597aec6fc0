import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'
import { loadConfig } from '../src/config.js'
import { verifyToken } from '../src/services/token.service.js'
import { tempDir } from './helpers/server.js'

const run = promisify(execFile)
const tokenCli = (args: string[], env: NodeJS.ProcessEnv) =>
  run(process.execPath, ['--import', 'tsx', 'src/cli/token.ts', ...args], { env: { ...process.env, ...env } })

describe('npm run token', () => {
  it('prints a token the server accepts, signed with the secret in DATA_DIR', async () => {
    const dir = await tempDir()
    const { stdout } = await tokenCli(['alice', '--plan', 'pro'], { DATA_DIR: dir, JWT_SECRET: '' })
    const { jwtSecret } = await loadConfig({ DATA_DIR: dir })
    expect(await verifyToken(jwtSecret, stdout.trim())).toEqual({ userId: 'alice', plan: 'pro', exp: undefined })
  })

  it('refuses a missing user id or an unknown plan with usage', async () => {
    const dir = await tempDir()
    await expect(tokenCli([], { DATA_DIR: dir })).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/usage/) })
    await expect(tokenCli(['bob', '--plan', 'gold'], { DATA_DIR: dir })).rejects.toMatchObject({ code: 2 })
  })
})
