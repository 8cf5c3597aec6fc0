/**
 * A growing document (`npm run bench`, part 8; alone with BENCH_ONLY=growth):
 * one device writes 1 KB clips into one document, 8 unacked at most, in
 * segments of 1,000 updates, until the document's state is about 8 MB, twice
 * COMPACT_MAX_BYTES. What one update costs should not grow with the
 * document: each segment reports its acks per second, the server's CPU per
 * update and its longest event-loop block. (A document whose state passed
 * COMPACT_MAX_BYTES used to be re-encoded whole on every commit: the last
 * segments cost 64x the first: 23 acked/s at 8 MB against 944 at 4 MB.)
 */
import * as Y from 'yjs'
import { BenchDevice } from './device.js'
import { pump } from './load.js'
import { tokenFor } from './scenarios.js'
import { makeTempDir, removeTempDir, startServer } from './server.js'

export interface GrowthSpec {
  segments: number
  updatesPerSegment: number
  clipBytes: number
  window: number
}

export interface GrowthSegment {
  /** Clips in the document at the end of the segment. */
  clips: number
  /** Approximate size of the document's state at the end, MB (clip bytes written). */
  stateMB: number
  ackedPerSec: number
  serverCpuUsPerUpdate: number
  /** The server's longest event-loop block during the segment, ms (/admin/metrics). */
  maxBlockMs: number
  failed: number
  /** Sent and never answered (acked or refused) by the end of the segment. */
  unanswered: number
}

export interface GrowthResult extends GrowthSpec {
  segments_: GrowthSegment[]
  /** Server CPU per update, last segment ÷ the cheapest while the state was under 4 MB (the first segment warms up). */
  cpuGrowth: number
}

export async function runGrowth(spec: GrowthSpec, progress: (line: string) => void): Promise<GrowthResult> {
  const dir = await makeTempDir('superclip-bench-growth-')
  const server = await startServer(dir)
  const device = new BenchDevice(server.url, await tokenFor('growth-user'), 'growth-d0', 'growth-user')
  try {
    Y.applyUpdate(device.doc, (await device.connectAndSync()).update)
    const clips = device.doc.getMap<Y.Map<unknown>>('clips')
    const body = 'x'.repeat(spec.clipBytes)
    let n = 0
    const segments: GrowthSegment[] = []
    for (let s = 0; s < spec.segments; s++) {
      let acked = 0
      let failed = 0
      await server.metrics(true)
      const cpu0 = await server.cpu()
      const t0 = performance.now()
      await pump(spec.updatesPerSegment, spec.window, t0 + 120_000, (answered) => {
        const sv = Y.encodeStateVector(device.doc)
        clips.set(`g${n}`, new Y.Map<unknown>([['content', `${body}${n++}`]]))
        device.sendUpdate(Y.encodeStateAsUpdate(device.doc, sv), (reply) => {
          if (reply.ok) acked++
          else failed++
          answered()
        })
      })
      const wallSec = (performance.now() - t0) / 1000
      const cpu1 = await server.cpu()
      const metrics = await server.metrics()
      const segment = {
        clips: n,
        stateMB: (n * spec.clipBytes) / 1e6,
        ackedPerSec: acked / wallSec,
        serverCpuUsPerUpdate: (cpu1.userUs + cpu1.systemUs - cpu0.userUs - cpu0.systemUs) / Math.max(1, acked),
        maxBlockMs: metrics.eventLoopDelayMs.maxMs,
        failed,
        // A segment that stopped at its deadline sent fewer: those count as unanswered too.
        unanswered: spec.updatesPerSegment - acked - failed,
      }
      segments.push(segment)
      progress(`  growth segment ${s + 1}/${spec.segments}: ${n} clips, ${Math.round(segment.ackedPerSec)} acked/s`)
    }
    const small = Math.min(...segments.filter((g) => g.stateMB <= 4).map((g) => g.serverCpuUsPerUpdate))
    const last = segments.at(-1)?.serverCpuUsPerUpdate ?? Number.NaN
    return { ...spec, segments_: segments, cpuGrowth: last / small }
  } finally {
    device.close()
    await server.stop()
    await removeTempDir(dir)
  }
}
