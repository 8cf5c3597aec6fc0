/**
 * `npm run token -- <userId> [--plan free|pro] [--expires 30d]`: prints a device
 * token signed with the server's JWT_SECRET (from the environment, or the one
 * generated into DATA_DIR), for local use.
 */
import { parseArgs } from 'node:util'
import { loadConfig } from '../config.js'
import { signToken } from '../services/token.service.js'

const usage = 'usage: npm run token -- <userId> [--plan free|pro] [--expires 30d]'

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { plan: { type: 'string', default: 'free' }, expires: { type: 'string' } },
  })
  const userId = positionals[0]
  const plan = values.plan
  if (!userId || userId.length > 128 || positionals.length > 1 || (plan !== 'free' && plan !== 'pro')) {
    console.error(usage)
    process.exit(2)
  }
  const config = await loadConfig()
  const token = await signToken(config.jwtSecret, {
    userId,
    plan,
    ...(values.expires === undefined ? {} : { expiresIn: values.expires }),
  })
  process.stdout.write(token + '\n')
}

main().catch((err: unknown) => {
  console.error(`token: ${err instanceof Error ? err.message : String(err)}`)
  process.exit(1)
})
