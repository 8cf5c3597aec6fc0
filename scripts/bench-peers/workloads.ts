/**
 * The workloads of `npm run bench:peers` (issue 5), each run the same way
 * against any of the three servers: a fresh server over a fresh data dir,
 * devices of that server's own client, the same Y.Doc operations, and the
 * time until devices hold what they should. Each workload bounds its waits
 * and tears down its server and data dir whatever happens.
 */
import { setImmediate as yieldToLoop } from 'node:timers/promises'
import { makeTempDir, removeTempDir } from '../bench/server.js'
import { median, percentile, sleep, waitUntil } from '../bench/stats.js'
import { newDevice, type Device } from './clients.js'
import { LOAD_BOUND_PCT, LoadPool } from './load.js'
import type { TargetName, TargetServer } from './servers.js'

export type StartServer = (dataDir: string) => Promise<TargetServer>

/** After a phase, this long with the devices still connected, so that deferred work (Hocuspocus stores 2 s after the last change) is counted. */
export const SETTLE_MS = 2500

/** Problems a workload saw (refusals, timeouts, disconnects); empty when all went as it should. */
export type Problems = string[]

async function withServer<T>(start: StartServer, prefix: string, run: (server: TargetServer, dir: string) => Promise<T>): Promise<T> {
  const dir = await makeTempDir(prefix)
  let server: TargetServer | undefined
  try {
    server = await start(dir)
    return await run(server, dir)
  } finally {
    await server?.stop()
    await removeTempDir(dir)
  }
}

export function connectAll(server: Pick<TargetServer, 'name' | 'url'>, ids: readonly { userId: string; deviceId: string }[]): Promise<Device[]> {
  return connectEach(server, ids, newDevice)
}

/** Devices `make` makes for `ids`, all connected and synced (or all closed, and an error). */
export async function connectEach<D extends Pick<Device, 'connect' | 'close'>>(
  server: Pick<TargetServer, 'name' | 'url'>,
  ids: readonly { userId: string; deviceId: string }[],
  make: (server: Pick<TargetServer, 'name' | 'url'>, userId: string, deviceId: string) => Promise<D>,
): Promise<D[]> {
  const devices = await Promise.all(ids.map((id) => make(server, id.userId, id.deviceId)))
  const synced = await Promise.allSettled(devices.map((d) => d.connect(60_000)))
  const failed = synced.find((s) => s.status === 'rejected')
  if (failed) {
    for (const d of devices) d.close()
    throw new Error(`devices failed to sync: ${String(failed.reason)}`)
  }
  return devices
}

export function deviceProblems(devices: readonly Pick<Device, 'deviceId' | 'errors' | 'refused'>[]): Problems {
  const problems: Problems = []
  const refused = devices.reduce((n, d) => n + d.refused(), 0)
  if (refused > 0) problems.push(`${refused} updates refused`)
  const errors = devices.flatMap((d) => d.errors.map((e) => `${d.deviceId}: ${e}`))
  if (errors.length > 0) problems.push(`device errors: ${errors.slice(0, 3).join('; ')}${errors.length > 3 ? ` (+${errors.length - 3})` : ''}`)
  return problems
}

/** Resolves once no device has an unacknowledged update (ours; the peers' protocols have no acks), or false after `ms`. */
export const allAcked = (devices: readonly Pick<Device, 'unacked'>[], ms: number): Promise<boolean> => waitUntil(() => devices.every((d) => d.unacked() === 0), ms)

// ---- 1 and 2: fan-out throughput ----

export interface FanoutSpec {
  users: number
  devicesPerUser: number
  clipsPerDevice: number
  rounds: number
  /** Unmeasured rounds first, of the same size, while the server's and this process's JIT warm up. */
  warmupRounds: number
  /** Whether each measured round also waits SETTLE_MS for deferred work (serverCpuSettledSec; NaN without). */
  settle: boolean
}

export interface FanoutRound {
  updates: number
  /** First edit to the moment the last device held all its user's clips, s. */
  wallSec: number
  updatesPerSec: number
  /** Server CPU over that time, s. */
  serverCpuSec: number
  /** Server CPU from the first edit to SETTLE_MS after the last device held everything (deferred persistence included), s. */
  serverCpuSettledSec: number
  /** CPU of all the load processes together (the bench process and its load workers) over the round, % of one core. */
  loadCpuPct: number
  /** CPU of the busiest load process over the round, % of one core. */
  loadMaxPct: number
  /** Each load process (bench process first), % of one core. */
  loadProcPct: number[]
  connectSec: number
}

export interface FanoutResult extends FanoutSpec {
  /** Load processes the devices were spread over (besides the bench process). */
  loadProcs: number
  warmup: FanoutRound[]
  rounds_: FanoutRound[]
  /** Medians over the measured rounds. */
  updatesPerSec: number
  serverCpuSec: number
  serverCpuSettledSec: number
  serverCpuUsPerUpdate: number
  loadCpuPct: number
  loadMaxPct: number
  /** Measured rounds in which the load was saturated (any load process, or their sum on a shared core, over LOAD_BOUND_PCT). */
  loadBoundRounds: number
  /** The median round's load was saturated: the figure may measure the clients, not the server. */
  loadBound: boolean
  problems: Problems
}

/**
 * `users` × `devicesPerUser` devices, fresh users each round; every device
 * makes `clipsPerDevice` clips, one transaction (one update) each, all devices
 * at once; timed until every device holds all of its user's clips. The
 * devices run in LoadPool's worker processes, not in this one.
 * `sharedLoadCore`: the load processes share one core (pinned), so their sum
 * counts against LOAD_BOUND_PCT too.
 */
export async function runFanout(start: StartServer, spec: FanoutSpec, progress: (line: string) => void, sharedLoadCore = true): Promise<FanoutResult> {
  const pool = await LoadPool.start()
  try {
    return await withServer(start, 'bench-peers-fanout-', async (server) => {
      const problems: Problems = []
      const round = async (label: string, users: number, settle: boolean, measured: boolean): Promise<FanoutRound> => {
        const ids = []
        for (let u = 0; u < users; u++) {
          for (let d = 0; d < spec.devicesPerUser; d++) ids.push({ userId: `${label}-u${u}`, deviceId: `${label}-u${u}-d${d}` })
        }
        const expected = spec.devicesPerUser * spec.clipsPerDevice
        let cpu0 = Number.NaN
        let cpu1 = Number.NaN
        let cpu2 = Number.NaN
        const r = await pool.round({ name: server.name, url: server.url, ...(server.urls ? { urls: server.urls } : {}) }, ids, spec.clipsPerDevice, expected, {
          onStart: async () => {
            if (measured) await server.probe?.start()
            cpu0 = await server.cpuUs()
          },
          onMeasured: async () => {
            cpu1 = await server.cpuUs()
            if (measured) await server.probe?.end()
          },
          during: async () => {
            if (!settle) return
            await sleep(SETTLE_MS)
            cpu2 = await server.cpuUs()
          },
        })
        if (r.short > 0) problems.push(`${label}: ${r.short} devices did not get all ${expected} clips within 60 s`)
        problems.push(...r.problems.map((p) => `${label}: ${p}`))
        const wallSec = r.wallMs / 1000
        return {
          updates: r.sent,
          wallSec,
          updatesPerSec: r.sent / wallSec,
          serverCpuSec: (cpu1 - cpu0) / 1e6,
          serverCpuSettledSec: (cpu2 - cpu0) / 1e6,
          loadCpuPct: r.sumCpuPct,
          loadMaxPct: r.maxCpuPct,
          loadProcPct: r.procCpuPct,
          connectSec: r.connectMs / 1000,
        }
      }
      const warmup: FanoutRound[] = []
      for (let r = 0; r < spec.warmupRounds; r++) warmup.push(await round(`warm${r}`, spec.users, false, false))
      const rounds: FanoutRound[] = []
      for (let r = 0; r < spec.rounds; r++) {
        progress(`  round ${r + 1}/${spec.rounds}`)
        rounds.push(await round(`r${r}`, spec.users, spec.settle, true))
      }
      const med = (f: (r: FanoutRound) => number) => median(rounds.map(f))
      const saturated = (r: FanoutRound) => r.loadMaxPct > LOAD_BOUND_PCT || (sharedLoadCore && r.loadCpuPct > LOAD_BOUND_PCT)
      const loadCpuPct = med((r) => r.loadCpuPct)
      const loadMaxPct = med((r) => r.loadMaxPct)
      return {
        ...spec,
        loadProcs: pool.size,
        warmup,
        rounds_: rounds,
        updatesPerSec: med((r) => r.updatesPerSec),
        serverCpuSec: med((r) => r.serverCpuSec),
        serverCpuSettledSec: med((r) => r.serverCpuSettledSec),
        serverCpuUsPerUpdate: med((r) => (r.serverCpuSec * 1e6) / r.updates),
        loadCpuPct,
        loadMaxPct,
        loadBoundRounds: rounds.filter(saturated).length,
        loadBound: loadMaxPct > LOAD_BOUND_PCT || (sharedLoadCore && loadCpuPct > LOAD_BOUND_PCT),
        problems,
      }
    })
  } finally {
    pool.close()
  }
}

// ---- 3: a fresh device joins a big document ----

export interface JoinResult {
  clips: number
  /** Bytes of the document's state as one update (Y.encodeStateAsUpdate on the writer). */
  docBytes: number
  populateSec: number
  /** Each fresh device: construction + connect to holding every clip, ms. */
  joinMs: number[]
  medianMs: number
  problems: Problems
}

/** A writer puts `clips` clips in chunks and stays connected; then fresh devices join, one after another (the first is a warm-up). */
export async function runJoin(start: StartServer, clips: number, chunk: number, reps: number): Promise<JoinResult> {
  return withServer(start, 'bench-peers-join-', async (server) => {
    const problems: Problems = []
    const userId = 'join-user'
    const [writer] = await connectAll(server, [{ userId, deviceId: 'writer' }])
    if (!writer) throw new Error('unreachable')
    try {
      const t0 = performance.now()
      for (let done = 0; done < clips; done += chunk) {
        writer.addClips(Math.min(chunk, clips - done))
        await yieldToLoop()
      }
      if (!(await allAcked([writer], 60_000))) problems.push('writer: updates unacknowledged after 60 s')
      const populateSec = (performance.now() - t0) / 1000
      const joinMs: number[] = []
      for (let i = 0; i <= reps; i++) {
        const t = performance.now()
        const reader = await newDevice(server, userId, `reader-${i}`)
        try {
          await reader.connect(60_000)
          const at = await reader.clips.reach(clips, 60_000)
          if (at === undefined) problems.push(`reader ${i}: ${reader.clips.count} of ${clips} clips after 60 s`)
          else if (i > 0) joinMs.push(at - t)
          problems.push(...deviceProblems([reader]))
        } finally {
          reader.close()
        }
      }
      problems.push(...deviceProblems([writer]))
      return { clips, docBytes: writer.stateBytes(), populateSec, joinMs, medianMs: median(joinMs), problems }
    } finally {
      writer.close()
    }
  })
}

// ---- 4: SIGKILL right after a relay ----

export interface LossRound {
  sent: number
  /** Clips a fresh device found after the restart. */
  found: number
  lost: number
  /** Clips still missing once B, with the doc it held at the kill, has connected and synced again. */
  lostAfterReturn: number
}

export interface LossResult {
  updates: number
  rounds: LossRound[]
  maxLost: number
  maxLostAfterReturn: number
  problems: Problems
}

/**
 * Device A makes `updates` clips (one update each, sent at once); the server
 * is SIGKILLed the moment device B holds all of them; restarted over the same
 * data dir, a fresh device counts what survived (waiting up to 3 s, as a
 * peer may deliver the stored state after its sync). Then B comes back with
 * the doc it held (as its app keeps it) and syncs; once the server has what
 * it sent, a second fresh device counts again: what is lost for good if A
 * never returns.
 */
export async function runLoss(start: StartServer, updates: number, rounds: number): Promise<LossResult> {
  const problems: Problems = []
  const results: LossRound[] = []
  for (let r = 0; r < rounds; r++) {
    const dir = await makeTempDir('bench-peers-loss-')
    let server: TargetServer | undefined
    try {
      server = await start(dir)
      const userId = `loss-${r}`
      const [a, b] = await connectAll(server, [
        { userId, deviceId: 'a' },
        { userId, deviceId: 'b' },
      ])
      if (!a || !b) throw new Error('unreachable')
      let held: Uint8Array
      try {
        for (let i = 0; i < updates; i++) a.addClips(1)
        const at = await b.clips.reach(updates, 30_000)
        await server.kill()
        if (at === undefined) problems.push(`round ${r}: B held ${b.clips.count} of ${updates} after 30 s (killed then)`)
        held = b.state()
      } finally {
        a.close()
        b.close()
      }
      server = await start(dir)
      const found = await countClips(server, userId, 'after-restart', updates, problems, r)
      const back = await newDevice(server, userId, 'b')
      try {
        back.restore(held)
        await back.connect(30_000)
        await back.settled(3000)
        problems.push(...deviceProblems([back]).map((p) => `round ${r}: ${p}`))
      } finally {
        back.close()
      }
      const foundAfterReturn = await countClips(server, userId, 'after-return', updates, problems, r)
      results.push({ sent: updates, found, lost: updates - found, lostAfterReturn: updates - foundAfterReturn })
    } finally {
      await server?.stop()
      await removeTempDir(dir)
    }
  }
  return {
    updates,
    rounds: results,
    maxLost: Math.max(...results.map((x) => x.lost)),
    maxLostAfterReturn: Math.max(...results.map((x) => x.lostAfterReturn)),
    problems,
  }
}

/** The clips a fresh device of `userId` holds after its sync (waiting up to 3 s for `expected`). */
async function countClips(server: TargetServer, userId: string, deviceId: string, expected: number, problems: Problems, round: number): Promise<number> {
  const c = await newDevice(server, userId, deviceId)
  try {
    await c.connect(30_000)
    await c.clips.reach(expected, 3000)
    problems.push(...deviceProblems([c]).map((p) => `round ${round}: ${p}`))
    return c.clips.count
  } finally {
    c.close()
  }
}

// ---- 5: edit to arrival on another device ----

export interface LatencyResult {
  edits: number
  p50Ms: number
  p99Ms: number
  maxMs: number
  problems: Problems
}

/** A makes one clip at a time; each delay is the edit (before the transaction) to B's doc holding it; the next edit follows the arrival. */
export async function runLatency(start: StartServer, warmup: number, edits: number): Promise<LatencyResult> {
  return withServer(start, 'bench-peers-latency-', async (server) => {
    const problems: Problems = []
    const userId = 'latency-user'
    const [a, b] = await connectAll(server, [
      { userId, deviceId: 'a' },
      { userId, deviceId: 'b' },
    ])
    if (!a || !b) throw new Error('unreachable')
    try {
      const delays: number[] = []
      for (let i = 0; i < warmup + edits; i++) {
        const t = performance.now()
        a.addClips(1)
        const at = await b.clips.reach(i + 1, 5000)
        if (at === undefined) {
          problems.push(`edit ${i} did not arrive within 5 s`)
          break
        }
        if (i >= warmup) delays.push(at - t)
      }
      problems.push(...deviceProblems([a, b]))
      return { edits: delays.length, p50Ms: percentile(delays, 50), p99Ms: percentile(delays, 99), maxMs: percentile(delays, 100), problems }
    } finally {
      a.close()
      b.close()
    }
  })
}

// ---- 6: server memory per loaded document ----

export interface MemoryResult {
  documents: number
  clipsPerDocument: number
  rssBaseMiB: number
  rssConnectedMiB: number
  rssLoadedMiB: number
  /** (loaded − base) ÷ documents: a document with its clips and its one connected device. */
  perDocumentKiB: number
  /** (connected − base) ÷ documents: the same, empty. */
  perEmptyDocumentKiB: number
  problems: Problems
}

/** `documents` users with one device each, each device putting `clipsPerDocument` clips (one update) into its own document. */
export async function runMemory(start: StartServer, documents: number, clipsPerDocument: number): Promise<MemoryResult> {
  return withServer(start, 'bench-peers-memory-', async (server) => {
    const problems: Problems = []
    const rss = async () => (await server.rssMiB()) ?? Number.NaN
    // Warm the server up (code paths, first allocations) with one document of the same shape, then let it go.
    const [warm] = await connectAll(server, [{ userId: 'mem-warm', deviceId: 'warm' }])
    warm?.addClips(clipsPerDocument)
    if (warm) await allAcked([warm], 10_000)
    await sleep(500)
    const rssBaseMiB = await rss()
    const devices = await connectAll(
      server,
      Array.from({ length: documents }, (_, i) => ({ userId: `mem-${i}`, deviceId: `mem-${i}-d0` })),
    )
    try {
      await sleep(500)
      const rssConnectedMiB = await rss()
      for (const d of devices) d.addClips(clipsPerDocument)
      if (!(await allAcked(devices, 30_000))) problems.push('updates unacknowledged after 30 s')
      await sleep(SETTLE_MS)
      const rssLoadedMiB = await rss()
      problems.push(...deviceProblems(devices))
      return {
        documents,
        clipsPerDocument,
        rssBaseMiB,
        rssConnectedMiB,
        rssLoadedMiB,
        perDocumentKiB: ((rssLoadedMiB - rssBaseMiB) * 1024) / documents,
        perEmptyDocumentKiB: ((rssConnectedMiB - rssBaseMiB) * 1024) / documents,
        problems,
      }
    } finally {
      for (const d of devices) d.close()
      warm?.close()
    }
  })
}

// ---- 7: cold load of a document written as many small updates ----

export interface ColdLoadResult {
  updates: number
  writers: number
  writeSec: number
  /** Restart: spawn to accepting connections, ms. */
  restartMs: number
  /** A fresh device, first after the restart: construction + connect to holding every clip, ms. */
  coldLoadMs: number
  found: number
  problems: Problems
}

/**
 * `writers` devices of one user make `updates` clips, one update each, in
 * slices; once they all hold everything and SETTLE_MS passed with them gone,
 * the server is stopped gracefully and restarted, and a fresh device syncs.
 */
export async function runColdLoad(start: StartServer, updates: number, writers: number): Promise<ColdLoadResult> {
  const problems: Problems = []
  const dir = await makeTempDir('bench-peers-cold-')
  let server: TargetServer | undefined
  const userId = 'cold-user'
  try {
    server = await start(dir)
    const devices = await connectAll(
      server,
      Array.from({ length: writers }, (_, i) => ({ userId, deviceId: `w${i}` })),
    )
    let writeSec: number
    try {
      const t0 = performance.now()
      const perWriter = Math.ceil(updates / writers)
      const slice = 250
      for (let done = 0; done < perWriter; done += slice) {
        for (const d of devices) for (let i = 0; i < Math.min(slice, perWriter - done); i++) d.addClips(1)
        await yieldToLoop()
      }
      const total = perWriter * writers
      const reached = await Promise.all(devices.map((d) => d.clips.reach(total, 180_000)))
      if (reached.some((at) => at === undefined)) problems.push(`writers held ${devices.map((d) => d.clips.count).join(', ')} of ${total} after 180 s`)
      if (!(await allAcked(devices, 30_000))) problems.push('updates unacknowledged after 30 s')
      writeSec = (performance.now() - t0) / 1000
      problems.push(...deviceProblems(devices))
    } finally {
      for (const d of devices) d.close()
    }
    await sleep(SETTLE_MS)
    await server.stop()
    server = await start(dir)
    const restartMs = server.startMs
    const total = Math.ceil(updates / writers) * writers
    const t = performance.now()
    const reader = await newDevice(server, userId, 'cold-reader')
    try {
      await reader.connect(120_000)
      const at = await reader.clips.reach(total, 120_000)
      if (at === undefined) problems.push(`the fresh device held ${reader.clips.count} of ${total} after 120 s`)
      problems.push(...deviceProblems([reader]))
      return { updates: total, writers, writeSec, restartMs, coldLoadMs: at === undefined ? Number.NaN : at - t, found: reader.clips.count, problems }
    } finally {
      reader.close()
    }
  } finally {
    await server?.stop()
    await removeTempDir(dir)
  }
}

export const TARGETS: readonly TargetName[] = ['y-websocket', 'Hocuspocus', 'ours', 'floor']
