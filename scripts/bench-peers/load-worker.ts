/**
 * One load process of `npm run bench:peers` (forked by load.ts): drives its
 * share of a fan-out round's devices (light-devices.ts) and reports back to
 * the bench process over IPC. Per round: `connect` (create and sync its
 * devices, and make their clips' updates), `go` (every device sends its
 * clips, one update each; then wait until each holds all its user's
 * clips), `cpu` (its own CPU since `go`), `finish` (wait for acks, collect problems, close the devices).
 * Times are epoch ms (performance.timeOrigin + performance.now()), so that
 * the bench process can compare them across processes.
 */
import { sleep } from '../bench/stats.js'
import { connectLight, type LoadDevice } from './light-devices.js'
import type { LoadReply, LoadRequest } from './load.js'
import { allAcked, deviceProblems } from './workloads.js'

const epochMs = (at: number) => performance.timeOrigin + at

let devices: LoadDevice[] = []
let cpu0: NodeJS.CpuUsage | undefined

async function handle(req: LoadRequest): Promise<LoadReply> {
  switch (req.type) {
    case 'connect': {
      const t = performance.now()
      devices = req.ids.length > 0 ? await connectLight(req.server, req.ids, req.clipsPerDevice) : []
      return { type: 'connected', connectMs: performance.now() - t }
    }
    case 'go': {
      cpu0 = process.cpuUsage()
      const t0 = epochMs(performance.now())
      for (let c = 0; c < req.clipsPerDevice; c++) for (const d of devices) d.addClips(1)
      const reached = await Promise.all(devices.map((d) => d.clips.reach(req.expected, req.timeoutMs)))
      const short = devices.filter((d) => d.clips.count < req.expected).length
      const t1 = reached.length === 0 ? t0 : Math.max(...reached.map((at) => (at === undefined ? Number.NaN : epochMs(at))))
      return { type: 'done', t0, t1, sent: devices.length * req.clipsPerDevice, held: devices.reduce((n, d) => n + d.clips.count, 0), short }
    }
    case 'cpu': {
      const u = process.cpuUsage(cpu0)
      return { type: 'cpu', cpuUs: u.user + u.system }
    }
    case 'finish': {
      const acked = devices.length === 0 || (await allAcked(devices, req.ackTimeoutMs))
      const problems = deviceProblems(devices)
      if (!acked) problems.push(`updates still unacknowledged ${req.ackTimeoutMs / 1000} s after`)
      for (const d of devices) d.close()
      devices = []
      await sleep(300)
      return { type: 'finished', problems }
    }
  }
}

// Each y-websocket WebsocketProvider adds a process 'exit' listener of its own.
process.setMaxListeners(0)
process.on('message', (msg: { seq: number; req: LoadRequest }) => {
  handle(msg.req).then(
    (reply) => process.send?.({ seq: msg.seq, reply }),
    (err: unknown) => process.send?.({ seq: msg.seq, error: err instanceof Error ? err.message : String(err) }),
  )
})
// The bench process gone: nothing left to report to.
process.on('disconnect', () => process.exit(0))
process.send?.({ seq: 0, reply: { type: 'ready' } })
