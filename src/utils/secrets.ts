import { randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import path from 'node:path'

/**
 * Reads `dir/name`, or creates it with 32 random bytes (base64url, mode 0600).
 * `wx` makes two processes racing on first start agree on one secret.
 */
export async function readOrCreateSecret(dir: string, name: string): Promise<string> {
  const file = path.join(dir, name)
  await mkdir(dir, { recursive: true })
  try {
    await writeFile(file, randomBytes(32).toString('base64url') + '\n', { mode: 0o600, flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  const secret = (await readFile(file, 'utf8')).trim()
  if (secret.length < 32) throw new Error(`${file} holds a secret shorter than 32 characters; delete it to regenerate`)
  return secret
}
