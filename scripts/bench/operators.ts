/**
 * Operators (`npm run bench`, part 9; alone with BENCH_ONLY=operators):
 * - snapshot and restore of a 10,000-clip document: time and bytes over the
 *   admin API (median of 3 snapshots; a dry run and a restore after 100 clips
 *   were edited);
 * - the server's longest event-loop block while a snapshot of an 8 MB
 *   document is taken, beside the same window without one (the state is
 *   merged in a worker thread, not on the loop);
 * - update throughput with scheduled snapshots every second against none
 *   (100 users x 2 devices, alternating rounds): what snapshots cost the
 *   users writing meanwhile, far more often than the hourly default.
 */
import * as Y from 'yjs'
import { BenchDevice } from './device.js'
import { pump } from './load.js'
import { runThroughput, tokenFor, type ThroughputSpec } from './scenarios.js'
import { BENCH_ADMIN_TOKEN, makeTempDir, removeTempDir, startServer, type ServerHandle } from './server.js'
import { median } from './stats.js'

export interface OperatorsSpec {
  clips: number
  bigClips: number
  bigClipBytes: number
  editedClips: number
  throughput: ThroughputSpec
  rounds: number
}

export interface OperatorsResult {
  clips: number
  snapshotMs: number
  snapshotBytes: number
  dryRunMs: number
  restoreMs: number
  restoreUpdated: number
  bigStateMB: number
  bigSnapshotMs: number
  /** Longest event-loop block while the 8 MB snapshot was taken, ms. */
  snapshotBlockMs: number
  /** Longest block in an idle window as long, ms. */
  idleBlockMs: number
  /** Acked updates/s per round, snapshots every second and none. */
  withSnapshots: number[]
  withoutSnapshots: number[]
  /** Median with ÷ median without. */
  throughputRatio: number
}

async function admin<T>(server: ServerHandle, method: string, path: string, body?: unknown): Promise<{ ms: number; body: T }> {
  const t0 = performance.now()
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${BENCH_ADMIN_TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  })
  const json = (await res.json()) as T
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`)
  return { ms: performance.now() - t0, body: json }
}

/** A device of `userId` that has written `count` clips of `bytes` each (500 per update). */
async function deviceWithClips(server: ServerHandle, userId: string, count: number, bytes: number): Promise<BenchDevice> {
  const device = new BenchDevice(server.url, await tokenFor(userId), `${userId}-d0`, userId)
  Y.applyUpdate(device.doc, (await device.connectAndSync()).update)
  const clips = device.doc.getMap<Y.Map<unknown>>('clips')
  const body = 'x'.repeat(bytes)
  let n = 0
  await pump(Math.ceil(count / 500), 4, performance.now() + 120_000, (answered) => {
    const sv = Y.encodeStateVector(device.doc)
    device.doc.transact(() => {
      for (let i = 0; i < 500 && n < count; i++, n++) clips.set(`c${n}`, new Y.Map<unknown>([['content', `${body}${n}`], ['title', 'before']]))
    })
    device.sendUpdate(Y.encodeStateAsUpdate(device.doc, sv), (reply) => {
      if (!reply.ok) throw new Error(`update refused: ${JSON.stringify(reply)}`)
      answered()
    })
  })
  return device
}

export async function runOperators(spec: OperatorsSpec, progress: (line: string) => void): Promise<OperatorsResult> {
  const dir = await makeTempDir('superclip-bench-operators-')
  const server = await startServer(dir)
  try {
    // Snapshot and restore of a 10,000-clip document.
    const device = await deviceWithClips(server, 'ops-user', spec.clips, 50)
    const snaps = []
    for (let i = 0; i < 3; i++) snaps.push(await admin<{ id: string; bytes: number }>(server, 'POST', '/admin/users/ops-user/snapshots', {}))
    const taken = snaps[0]?.body
    if (!taken) throw new Error('no snapshot')
    const clips = device.doc.getMap<Y.Map<unknown>>('clips')
    const sv = Y.encodeStateVector(device.doc)
    device.doc.transact(() => {
      for (let i = 0; i < spec.editedClips; i++) clips.get(`c${i}`)?.set('title', 'after')
    })
    await new Promise<void>((resolve, reject) =>
      device.sendUpdate(Y.encodeStateAsUpdate(device.doc, sv), (reply) => (reply.ok ? resolve() : reject(new Error(JSON.stringify(reply))))),
    )
    const dry = await admin(server, 'POST', '/admin/users/ops-user/restore', { snapshotId: taken.id, dryRun: true })
    const restored = await admin<{ changed: { updated: number } }>(server, 'POST', '/admin/users/ops-user/restore', { snapshotId: taken.id })
    device.close()
    progress(`  operators: snapshot of ${spec.clips} clips ${Math.round(median(snaps.map((s) => s.ms)))} ms, restore ${Math.round(restored.ms)} ms`)

    // The event loop while an 8 MB document is snapshotted.
    const big = await deviceWithClips(server, 'ops-big', spec.bigClips, spec.bigClipBytes)
    await server.metrics(true)
    const big0 = performance.now()
    const bigSnap = await admin<{ bytes: number }>(server, 'POST', '/admin/users/ops-big/snapshots', {})
    const snapshotBlockMs = (await server.metrics(true)).eventLoopDelayMs.maxMs
    await new Promise((r) => setTimeout(r, Math.max(200, performance.now() - big0)))
    const idleBlockMs = (await server.metrics()).eventLoopDelayMs.maxMs
    big.close()
    progress(`  operators: 8 MB snapshot ${Math.round(bigSnap.ms)} ms, longest block ${snapshotBlockMs} ms (idle ${idleBlockMs} ms)`)

    // Throughput with scheduled snapshots every second, against none: alternating rounds.
    const withSnapshots: number[] = []
    const withoutSnapshots: number[] = []
    for (let r = 0; r < spec.rounds; r++) {
      withoutSnapshots.push((await runThroughput({ ...spec.throughput, serverEnv: { SNAPSHOT_EVERY_MS: '0' } })).ackedPerSec)
      withSnapshots.push((await runThroughput({ ...spec.throughput, serverEnv: { SNAPSHOT_EVERY_MS: '1000' } })).ackedPerSec)
      progress(`  operators: throughput round ${r + 1}/${spec.rounds}: ${Math.round(withSnapshots.at(-1) ?? 0)} with, ${Math.round(withoutSnapshots.at(-1) ?? 0)} without`)
    }
    return {
      clips: spec.clips,
      snapshotMs: median(snaps.map((s) => s.ms)),
      snapshotBytes: taken.bytes,
      dryRunMs: dry.ms,
      restoreMs: restored.ms,
      restoreUpdated: restored.body.changed.updated,
      bigStateMB: bigSnap.body.bytes / 1e6,
      bigSnapshotMs: bigSnap.ms,
      snapshotBlockMs,
      idleBlockMs,
      withSnapshots,
      withoutSnapshots,
      throughputRatio: median(withSnapshots) / median(withoutSnapshots),
    }
  } finally {
    await server.stop()
    await removeTempDir(dir)
  }
}
