// One SDK device in its own process, with a LevelDB store, for tests that
// restart or kill the client process. Driven by the environment; prints one
// JSON line per step on stdout.
//   MODE=edit: creates COUNT clips, waits until they are in the local store,
//              prints { step: 'stored', ... } and stays up until killed.
//   MODE=sync: prints what it loaded ({ step: 'loaded', ... }), syncs, prints
//              { step: 'synced', ... } and exits 0.
import process from 'node:process'
import { setInterval } from 'node:timers'
import { SyncClient } from '@superclip/sync-client'

const { SYNC_URL, TOKEN, DEVICE, DIR, MODE, COUNT = '3' } = process.env
const client = new SyncClient({ url: SYNC_URL, token: TOKEN, deviceId: DEVICE, storage: { dir: DIR } })
const say = (step, extra = {}) =>
  process.stdout.write(
    `${JSON.stringify({ step, status: client.status, pending: client.pendingChanges, clips: client.clips.list().map((c) => c.content).sort(), ...extra })}\n`,
  )
client.on('error', (error) => process.stderr.write(`sync error ${error.code}: ${error.message}\n`))

await client.ready
if (MODE === 'edit') {
  for (let i = 0; i < Number(COUNT); i++) client.clips.create({ content: `offline ${DEVICE} ${i}` })
  await client.whenStored()
  say('stored')
  setInterval(() => {}, 60_000)
} else {
  say('loaded')
  await client.whenSynced()
  say('synced')
  await client.close()
}
