/**
 * The measured scenarios. Each starts its own server over a fresh data dir,
 * connects real devices, measures, and tears everything down; each is bounded
 * in update count and in time.
 */
import { signToken } from '../../src/services/token.service.js'
import * as Y from 'yjs'
import { BenchDevice, updateKey, updateKeys, type AckReply } from './device.js'
import { pump, SendTally } from './load.js'
import { BENCH_SECRET, countFsyncs, makeTempDir, removeTempDir, startServer, type ServerHandle } from './server.js'
import { mean, median, percentile, sleep, waitUntil } from './stats.js'

const tokens = new Map<string, Promise<string>>()
export function tokenFor(userId: string): Promise<string> {
  let t = tokens.get(userId)
  if (!t) {
    t = signToken(BENCH_SECRET, { userId, plan: 'pro' })
    tokens.set(userId, t)
  }
  return t
}

/** Connects `users` × `devicesPerUser` devices (users `bench-user-<u>`, pro tokens) and applies each one's initial sync. */
export async function connectDevices(
  server: ServerHandle,
  users: number,
  devicesPerUser: number,
  deflate = true,
): Promise<BenchDevice[]> {
  const devices: BenchDevice[] = []
  for (let u = 0; u < users; u++) {
    const userId = `bench-user-${u}`
    const token = await tokenFor(userId)
    for (let d = 0; d < devicesPerUser; d++) devices.push(new BenchDevice(server.url, token, `u${u}-d${d}`, userId, { deflate }))
  }
  const synced = await Promise.allSettled(devices.map((d) => d.connectAndSync()))
  const failed = synced.find((s) => s.status === 'rejected')
  if (failed) {
    for (const d of devices) d.close()
    throw new Error(`devices failed to sync: ${String(failed.reason)}`)
  }
  synced.forEach((s, i) => {
    const device = devices[i]
    if (s.status === 'fulfilled' && device) Y.applyUpdate(device.doc, s.value.update)
  })
  return devices
}

/** A fresh device of `userId` syncs and counts the clips the server gave it. */
export async function clipsOnServer(server: ServerHandle, userId: string, deviceId = `verifier-${Date.now()}`): Promise<number> {
  const device = new BenchDevice(server.url, await tokenFor(userId), deviceId, userId)
  try {
    const timing = await device.connectAndSync()
    Y.applyUpdate(device.doc, timing.update)
    return device.doc.getMap('clips').size
  } finally {
    device.close()
  }
}

/** `run`'s result, and the server's CPU time (user + system, µs) from just before it to just after. */
export async function withServerCpu<T>(server: ServerHandle, run: () => Promise<T>): Promise<{ result: T; cpuUs: number }> {
  const cpu0 = await server.cpu()
  const result = await run()
  const cpu1 = await server.cpu()
  return { result, cpuUs: cpu1.userUs + cpu1.systemUs - cpu0.userUs - cpu0.systemUs }
}

/** Per-phase counters shared by every device's pump and relay handler, with the sends and acks per user. */
class PhaseStats extends SendTally {
  readonly ackedByUser = new Map<string, number>()
  readonly sentByUser = new Map<string, number>()
}

/** Sends up to `count` new-clip updates from `device` (see `pump`: `window` unacknowledged at most, until `deadline`). */
function pumpUpdates(device: BenchDevice, count: number, window: number, deadline: number, stats: PhaseStats): Promise<void> {
  return pump(count, window, deadline, (answered) => {
    const update = device.addClips(1)
    const at = performance.now()
    stats.sentAt.set(updateKey(update), at)
    stats.sent++
    stats.sentByUser.set(device.userId, (stats.sentByUser.get(device.userId) ?? 0) + 1)
    device.sendUpdate(update, (reply: AckReply) => {
      stats.answered(at, reply.ok, reply.error)
      if (reply.ok) stats.ackedByUser.set(device.userId, (stats.ackedByUser.get(device.userId) ?? 0) + 1)
      answered()
    })
  })
}

/** Each relay a device gets counts as the delivery of every clip it carries, in the phase `stats()` returns. */
export function watchRelays(devices: readonly BenchDevice[], stats: () => SendTally): void {
  for (const d of devices) d.onRelay = (relay, at) => updateKeys(relay.update).forEach((key) => stats().relayed(key, at))
}

export interface ThroughputSpec {
  name: string
  users: number
  devicesPerUser: number
  /** Unacknowledged updates each device keeps in flight (1 = one at a time). */
  window: number
  updatesPerDevice: number
  warmupPerDevice: number
  /** No new update is sent after this (acks are still awaited, up to ACK_GRACE_MS more). */
  timeLimitMs: number
  /** Whether the clients offer permessage-deflate (default true, as real clients do). */
  deflate?: boolean
  /** Server settings to change from their defaults. */
  serverEnv?: Record<string, string>
}

/** A measured phase's acks and relays, and what a fresh device then finds on the server. */
export interface AckAndDelivery {
  ackP50Ms: number
  ackP99Ms: number
  deliveriesExpected: number
  delivered: number
  /** Relays whose update was not sent in the measured phase (should be 0). */
  unmatchedRelays: number
  deliveryP50Ms: number
  deliveryP99Ms: number
  /** Clips a fresh device of the measured user (throughput: user 0) finds on the server; at least what that user's devices had acked, at most what they sent. */
  verifiedClips: number
  expectedClipsMin: number
  expectedClipsMax: number
}

export interface ThroughputResult extends AckAndDelivery {
  name: string
  users: number
  devices: number
  window: number
  deflate: boolean
  sent: number
  acked: number
  failed: number
  /** Sent, neither acked nor refused within the grace period. */
  unanswered: number
  firstError: string | null
  wallSec: number
  ackedPerSec: number
  serverCpuUsPerUpdate: number
  serverUserUsPerUpdate: number
  serverSysUsPerUpdate: number
  serverCpuPct: number
  benchCpuPct: number
  serverDiskBytesPerUpdate: number | null
  serverRssMiB: number | null
  /** fsync + fdatasync calls of the server over warm-up and measured phase (perf), null if not countable. */
  serverFsyncs: number | null
  /** Acked updates (warm-up and measured) per server fsync, null if not countable. */
  updatesPerFsync: number | null
  deviceErrors: string[]
  serverStartMs: number
}

export async function runThroughput(spec: ThroughputSpec): Promise<ThroughputResult> {
  const dir = await makeTempDir('superclip-bench-data-')
  const server = await startServer(dir, spec.serverEnv)
  let devices: BenchDevice[] = []
  try {
    devices = await connectDevices(server, spec.users, spec.devicesPerUser, spec.deflate !== false)
    let stats = new PhaseStats()
    watchRelays(devices, () => stats)
    const relayFanout = spec.devicesPerUser - 1
    const ackedByUser = new Map<string, number>()
    const sentByUser = new Map<string, number>()
    const runPhase = async (count: number, timeLimitMs: number) => {
      const deadline = performance.now() + timeLimitMs
      await Promise.all(devices.map((d) => pumpUpdates(d, count, spec.window, deadline, stats)))
      for (const [u, n] of stats.ackedByUser) ackedByUser.set(u, (ackedByUser.get(u) ?? 0) + n)
      for (const [u, n] of stats.sentByUser) sentByUser.set(u, (sentByUser.get(u) ?? 0) + n)
    }
    const deliveriesDone = (s: PhaseStats) => s.delivered >= s.acked * relayFanout

    const fsyncs = countFsyncs(server.pid)
    await sleep(500) // let perf attach

    // Warm-up (JIT, socket buffers, first compaction decisions): same shape, not measured.
    await runPhase(spec.warmupPerDevice, spec.timeLimitMs)
    const warm = stats
    await waitUntil(() => deliveriesDone(warm), 15_000)

    stats = new PhaseStats()
    const measured = stats
    const cpu0 = await server.cpu()
    const disk0 = await server.writeBytes()
    const bench0 = process.cpuUsage()
    const t0 = performance.now()
    await runPhase(spec.updatesPerDevice, spec.timeLimitMs)
    const wallSec = measured.acked > 0 ? (measured.lastAckAt - t0) / 1000 : Number.NaN
    await waitUntil(() => deliveriesDone(measured), 15_000)
    const t1 = performance.now()
    const cpu1 = await server.cpu()
    const disk1 = await server.writeBytes()
    const bench = process.cpuUsage(bench0)
    const rss = await server.rssMiB()
    const fsyncCount = await fsyncs.stop()
    const serverUserUs = cpu1.userUs - cpu0.userUs
    const serverSysUs = cpu1.systemUs - cpu0.systemUs

    const user0 = 'bench-user-0'
    const verifiedClips = await clipsOnServer(server, user0)
    const windowUs = (t1 - t0) * 1000
    return {
      name: spec.name,
      users: spec.users,
      devices: devices.length,
      window: spec.window,
      deflate: spec.deflate !== false,
      ...measured.summary(),
      wallSec,
      ackedPerSec: measured.acked / wallSec,
      serverCpuUsPerUpdate: (serverUserUs + serverSysUs) / measured.acked,
      serverUserUsPerUpdate: serverUserUs / measured.acked,
      serverSysUsPerUpdate: serverSysUs / measured.acked,
      serverCpuPct: ((serverUserUs + serverSysUs) / windowUs) * 100,
      benchCpuPct: ((bench.user + bench.system) / windowUs) * 100,
      serverDiskBytesPerUpdate: disk0 !== undefined && disk1 !== undefined ? (disk1 - disk0) / measured.acked : null,
      serverRssMiB: rss ?? null,
      serverFsyncs: fsyncCount ?? null,
      updatesPerFsync: fsyncCount ? (warm.acked + measured.acked) / fsyncCount : null,
      ackP50Ms: percentile(measured.ackMs, 50),
      ackP99Ms: percentile(measured.ackMs, 99),
      deliveriesExpected: measured.acked * relayFanout,
      delivered: measured.deliveryMs.length,
      unmatchedRelays: measured.unmatchedRelays,
      deliveryP50Ms: percentile(measured.deliveryMs, 50),
      deliveryP99Ms: percentile(measured.deliveryMs, 99),
      verifiedClips,
      expectedClipsMin: ackedByUser.get(user0) ?? 0,
      expectedClipsMax: sentByUser.get(user0) ?? 0,
      deviceErrors: devices.flatMap((d) => d.errors.map((e) => `${d.deviceId}: ${e}`)).slice(0, 5),
      serverStartMs: server.startMs,
    }
  } finally {
    for (const d of devices) d.close()
    await server.stop()
    await removeTempDir(dir)
  }
}

export interface LatencyResult {
  updates: number
  failed: number
  ackP50Ms: number
  ackP99Ms: number
  ackMaxMs: number
  deliveryP50Ms: number
  deliveryP99Ms: number
  deliveryMaxMs: number
  delivered: number
  /** Round trip of a `sync:update` carrying an empty update: the same path without the write. */
  noWriteP50Ms: number
  noWriteP99Ms: number
  converged: boolean
}

/** Two devices of one user: A sends one update at a time; B receives and applies each. */
export async function runLatency(count: number, timeLimitMs: number): Promise<LatencyResult> {
  const dir = await makeTempDir('superclip-bench-data-')
  const server = await startServer(dir)
  let devices: BenchDevice[] = []
  try {
    devices = await connectDevices(server, 1, 2)
    const [a, b] = devices
    if (!a || !b) throw new Error('unreachable')
    let stats = new PhaseStats()
    watchRelays([b], () => stats)
    const applyOnB = b.onRelay
    b.onRelay = (relay, at) => {
      applyOnB?.(relay, at)
      Y.applyUpdate(b.doc, relay.update)
    }
    await pumpUpdates(a, Math.min(200, count), 1, performance.now() + timeLimitMs, stats) // warm-up
    await waitUntil(() => stats.delivered >= stats.acked, 10_000)
    stats = new PhaseStats()
    const measured = stats
    await pumpUpdates(a, count, 1, performance.now() + timeLimitMs, measured)
    await waitUntil(() => measured.delivered >= measured.acked, 10_000)

    // The same round trip without a write: an empty update is validated and acknowledged, not stored.
    const empty = Y.encodeStateAsUpdate(new Y.Doc())
    const noWrite: number[] = []
    const noWriteDeadline = performance.now() + Math.min(5000, timeLimitMs)
    for (let i = 0; i < Math.min(count, 1000) && performance.now() < noWriteDeadline; i++) {
      const at = performance.now()
      const reply = await new Promise<AckReply>((resolve) => a.sendUpdate(empty, resolve))
      if (reply.ok) noWrite.push(performance.now() - at)
    }
    const converged =
      a.doc.getMap('clips').size === b.doc.getMap('clips').size &&
      Buffer.compare(Y.encodeStateVector(a.doc), Y.encodeStateVector(b.doc)) === 0
    return {
      updates: measured.acked,
      failed: measured.failed,
      ackP50Ms: percentile(measured.ackMs, 50),
      ackP99Ms: percentile(measured.ackMs, 99),
      ackMaxMs: percentile(measured.ackMs, 100),
      deliveryP50Ms: percentile(measured.deliveryMs, 50),
      deliveryP99Ms: percentile(measured.deliveryMs, 99),
      deliveryMaxMs: percentile(measured.deliveryMs, 100),
      delivered: measured.deliveryMs.length,
      noWriteP50Ms: percentile(noWrite, 50),
      noWriteP99Ms: percentile(noWrite, 99),
      converged,
    }
  } finally {
    for (const d of devices) d.close()
    await server.stop()
    await removeTempDir(dir)
  }
}

export interface SyncSample {
  totalMs: number
  connectMs: number
  requestToResponseMs: number
  requestToCompleteMs: number
  updateBytes: number
  wireBytes: number | null
  clientApplyMs: number
  serverCpuMs: number
  clips: number
}

export interface InitialSyncResult {
  clips: number
  chunks: number
  populateSec: number
  populateChunkBytes: number
  warm: SyncSample[]
  cold: SyncSample[]
  warmMedian: SyncSample
  coldMedian: SyncSample
  serverStartMs: number[]
  /** Time spent in the probe's measurements and restarts, s (0 without a probe). */
  probeSec: number
}

/** The median of each of `keys` over `samples` (NaN when there are none), as one record with the keys in that order. */
export function medians<K extends string>(samples: readonly NoInfer<Record<K, number>>[], keys: readonly K[]): Record<K, number> {
  return Object.fromEntries(keys.map((k) => [k, median(samples.map((s) => s[k]))])) as Record<K, number>
}

function medianSample(samples: readonly SyncSample[]): SyncSample {
  const wire = samples.map((s) => s.wireBytes).filter((v): v is number => v !== null)
  return {
    ...medians(samples, ['totalMs', 'connectMs', 'requestToResponseMs', 'requestToCompleteMs', 'updateBytes']),
    wireBytes: wire.length > 0 ? median(wire) : null,
    ...medians(samples, ['clientApplyMs', 'serverCpuMs', 'clips']),
  }
}

async function freshDeviceSync(server: ServerHandle, userId: string, deviceId: string): Promise<SyncSample> {
  const device = new BenchDevice(server.url, await tokenFor(userId), deviceId, userId)
  try {
    const { result: timing, cpuUs } = await withServerCpu(server, () => device.connectAndSync(60_000))
    const t0 = performance.now()
    Y.applyUpdate(device.doc, timing.update)
    const clientApplyMs = performance.now() - t0
    return {
      totalMs: timing.totalMs,
      connectMs: timing.connectMs,
      requestToResponseMs: timing.requestToResponseMs,
      requestToCompleteMs: timing.requestToCompleteMs,
      updateBytes: timing.update.byteLength,
      wireBytes: timing.wireBytes ?? null,
      clientApplyMs,
      serverCpuMs: cpuUs / 1000,
      clips: device.doc.getMap('clips').size,
    }
  } finally {
    device.close()
  }
}

/** More measurements on the document runInitialSync builds (e.g. other kinds of device syncing it). */
export interface SameDocumentProbe {
  /** Runs after the warm syncs, with the document loaded in the server. */
  warm(server: ServerHandle, userId: string, clips: number): Promise<void>
  /** Extra restarts after the cold syncs; `cold` runs right after each, before anything else connects. */
  coldRuns: number
  cold(server: ServerHandle, userId: string, run: number): Promise<void>
}

/**
 * One device pushes `clips` clips in chunks; then fresh devices sync it from
 * nothing, `warmReps` times with the document loaded in the server, and
 * `coldReps` times right after a server restart (loaded from LevelDB).
 * A `probe` measures more on the same document: after the warm syncs, and
 * after its own restarts following the cold ones.
 */
export async function runInitialSync(
  clips: number,
  chunk: number,
  warmReps: number,
  coldReps: number,
  probe?: SameDocumentProbe,
): Promise<InitialSyncResult> {
  const dir = await makeTempDir('superclip-bench-data-')
  let server = await startServer(dir)
  const serverStartMs = [server.startMs]
  const userId = 'bench-big-user'
  try {
    const writer = new BenchDevice(server.url, await tokenFor(userId), 'writer', userId)
    const chunkBytes: number[] = []
    const t0 = performance.now()
    try {
      await writer.connectAndSync()
      for (let done = 0; done < clips; done += chunk) {
        const update = writer.addClips(Math.min(chunk, clips - done))
        chunkBytes.push(update.byteLength)
        const reply = await new Promise<AckReply>((resolve) => writer.sendUpdate(update, resolve))
        if (!reply.ok) throw new Error(`populate: update refused: ${reply.error}`)
      }
    } finally {
      writer.close()
    }
    const populateSec = (performance.now() - t0) / 1000

    const warm: SyncSample[] = []
    for (let i = 0; i < warmReps; i++) warm.push(await freshDeviceSync(server, userId, `reader-warm-${i}`))
    let probeMs = 0
    const probeStart = performance.now()
    await probe?.warm(server, userId, clips)
    probeMs += performance.now() - probeStart
    const cold: SyncSample[] = []
    for (let i = 0; i < coldReps; i++) {
      await server.stop()
      server = await startServer(dir)
      serverStartMs.push(server.startMs)
      cold.push(await freshDeviceSync(server, userId, `reader-cold-${i}`))
    }
    const probeColdStart = performance.now()
    for (let i = 0; i < (probe?.coldRuns ?? 0); i++) {
      await server.stop()
      server = await startServer(dir)
      serverStartMs.push(server.startMs)
      await probe?.cold(server, userId, i)
    }
    probeMs += performance.now() - probeColdStart
    for (const s of [...warm, ...cold]) {
      if (s.clips !== clips) throw new Error(`initial sync delivered ${s.clips} clips, expected ${clips}`)
    }
    return {
      clips,
      chunks: chunkBytes.length,
      populateSec,
      populateChunkBytes: mean(chunkBytes),
      warm,
      cold,
      warmMedian: medianSample(warm),
      coldMedian: medianSample(cold),
      serverStartMs,
      probeSec: probeMs / 1000,
    }
  } finally {
    await server.stop()
    await removeTempDir(dir)
  }
}
