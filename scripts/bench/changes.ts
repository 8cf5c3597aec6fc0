/**
 * The JSON path (PROTOCOL section 5) against the Yjs path, measured in the
 * same run on the same server:
 * - change records applied per second: JSON devices creating clips with
 *   `sync:entity_created`, and Yjs devices creating the same clips with
 *   `sync:update`, in alternating phases (JSON, Yjs, Yjs, JSON) so that drift
 *   of the machine or the server's warmth favours neither;
 * - a fresh JSON device's full change-log sync of a large document, next to a
 *   fresh Yjs device's state-vector sync of the same document (a probe that
 *   runInitialSync runs on its data dir).
 */
import * as Y from 'yjs'
import { BenchDevice, updateKey, type AckReply } from './device.js'
import { BenchJsonDevice, type ChangeAck, type ChangeLogTiming } from './json-device.js'
import { tokenFor, type SameDocumentProbe } from './scenarios.js'
import { makeTempDir, removeTempDir, startServer, type ServerHandle } from './server.js'
import { median, percentile, sleep, waitUntil } from './stats.js'

// ---------------------------------------------------------------------------
// Change records applied per second

export interface ChangeRateSpec {
  name: string
  /** Devices of one user, on each path. */
  devices: number
  /** Unacknowledged changes each device keeps in flight. */
  window: number
  /** Measured changes per device and path, sent in two halves. */
  changesPerDevice: number
  warmupPerDevice: number
  /** Per phase: no new change is sent after this (acks are still awaited, up to ACK_GRACE_MS more). */
  timeLimitMs: number
}

export interface PathRate {
  path: 'json' | 'yjs'
  sent: number
  acked: number
  failed: number
  unanswered: number
  firstError: string | null
  /** Acks that were ok but not what a new clip's ack should be (JSON: version 1, no conflicts). */
  oddAcks: number
  /** Sum over the measured phases of first send … last ack, s. */
  wallSec: number
  ackedPerSec: number
  serverCpuUsPerChange: number
  ackP50Ms: number
  ackP99Ms: number
  deliveriesExpected: number
  delivered: number
  unmatchedRelays: number
  deliveryP50Ms: number
  deliveryP99Ms: number
  /** Clips a fresh device of this path's user finds on the server, and the bounds it should be within. */
  verifiedClips: number
  expectedClipsMin: number
  expectedClipsMax: number
}

export interface ChangeRateResult {
  name: string
  devices: number
  window: number
  json: PathRate
  yjs: PathRate
  /** JSON ÷ Yjs. */
  ratio: { ackedPerSec: number; serverCpuPerChange: number; ackP50: number; ackP99: number }
  deviceErrors: string[]
  serverStartMs: number
}

const ACK_GRACE_MS = 20_000

class Phase {
  sent = 0
  acked = 0
  failed = 0
  oddAcks = 0
  firstError: string | undefined
  firstSendAt = Number.NaN
  lastAckAt = Number.NaN
  readonly ackMs: number[] = []
  readonly deliveryMs: number[] = []
  delivered = 0
  unmatchedRelays = 0
  readonly sentAt = new Map<string, number>()
}

/** Sends one new clip; `reply` gets ok, or the error. Returns the key its relays carry. */
type SendClip = (reply: (ok: boolean, odd: boolean, error: string | undefined) => void) => string

/** Keeps `window` clips in flight from one device until `count` are sent or `deadline`; resolves when all are answered. */
function pump(send: SendClip, count: number, window: number, deadline: number, phase: Phase): Promise<void> {
  return new Promise((resolve) => {
    let sent = 0
    let inflight = 0
    let finished = false
    const finish = () => {
      if (finished) return
      finished = true
      clearTimeout(guard)
      resolve()
    }
    const guard = setTimeout(finish, Math.max(0, deadline - performance.now()) + ACK_GRACE_MS)
    const next = () => {
      while (inflight < window && sent < count && performance.now() < deadline) {
        const at = performance.now()
        if (Number.isNaN(phase.firstSendAt)) phase.firstSendAt = at
        sent++
        inflight++
        phase.sent++
        const key = send((ok, odd, error) => {
          const now = performance.now()
          inflight--
          if (ok) {
            phase.acked++
            if (odd) phase.oddAcks++
            phase.ackMs.push(now - at)
            phase.lastAckAt = now
          } else {
            phase.failed++
            phase.firstError ??= error
          }
          if (!finished) next()
        })
        phase.sentAt.set(key, at)
      }
      if (inflight === 0) finish()
    }
    next()
  })
}

function relayTo(phase: () => Phase) {
  return (key: string, at: number) => {
    const p = phase()
    p.delivered++
    const sentAt = p.sentAt.get(key)
    if (sentAt === undefined) p.unmatchedRelays++
    else p.deliveryMs.push(at - sentAt)
  }
}

const jsonSender =
  (d: BenchJsonDevice): SendClip =>
  (reply) =>
    d.createClip((ack: ChangeAck) => reply(ack.ok, ack.ok && (ack.version !== 1 || ack.conflicts !== 0), ack.error))

const yjsSender =
  (d: BenchDevice): SendClip =>
  (reply) => {
    const update = d.addClips(1)
    d.sendUpdate(update, (r: AckReply) => reply(r.ok, false, r.error))
    return updateKey(update)
  }

interface PathRun {
  senders: SendClip[]
  phase: Phase
  /** Measured phases so far, for the totals. */
  measured: Phase[]
  cpuUs: number
  /** Changes sent and acked over warm-up and measured phases (for the final count). */
  sentTotal: number
  ackedTotal: number
}

/** Every spec on one server (fresh data dir), each with its own two users. */
export async function runChangeRates(specs: readonly ChangeRateSpec[], progress: (spec: ChangeRateSpec) => void): Promise<ChangeRateResult[]> {
  const dir = await makeTempDir('superclip-bench-data-')
  const server = await startServer(dir)
  try {
    const results: ChangeRateResult[] = []
    for (const [i, spec] of specs.entries()) {
      progress(spec)
      results.push(await runChangeRate(server, spec, `bench-json-user-${i}`, `bench-yjs-user-${i}`))
    }
    return results
  } finally {
    await server.stop()
    await removeTempDir(dir)
  }
}

async function runChangeRate(server: ServerHandle, spec: ChangeRateSpec, jsonUser: string, yjsUser: string): Promise<ChangeRateResult> {
  const jsonDevices: BenchJsonDevice[] = []
  const yjsDevices: BenchDevice[] = []
  try {
    const jsonToken = await tokenFor(jsonUser)
    const yjsToken = await tokenFor(yjsUser)
    for (let i = 0; i < spec.devices; i++) {
      jsonDevices.push(new BenchJsonDevice(server.url, jsonToken, `json-d${i}`, jsonUser))
      yjsDevices.push(new BenchDevice(server.url, yjsToken, `yjs-d${i}`, yjsUser))
    }
    // Every device syncs first (an empty document), so that it is live and receives the others' changes.
    await Promise.all(jsonDevices.map((d) => d.connectAndSync(undefined)))
    const synced = await Promise.all(yjsDevices.map((d) => d.connectAndSync()))
    synced.forEach((t, i) => {
      const d = yjsDevices[i]
      if (d) Y.applyUpdate(d.doc, t.update)
    })

    const newRun = (senders: SendClip[]): PathRun => ({ senders, phase: new Phase(), measured: [], cpuUs: 0, sentTotal: 0, ackedTotal: 0 })
    const json = newRun(jsonDevices.map(jsonSender))
    const yjs = newRun(yjsDevices.map(yjsSender))
    for (const d of jsonDevices) d.onRelay = relayTo(() => json.phase)
    const yjsRelay = relayTo(() => yjs.phase)
    for (const d of yjsDevices) d.onRelay = (relay, at) => yjsRelay(updateKey(relay.update), at)
    const fanout = spec.devices - 1

    const runPhase = async (run: PathRun, perDevice: number, measure: boolean) => {
      const phase = new Phase()
      run.phase = phase
      const cpu0 = await server.cpu()
      const deadline = performance.now() + spec.timeLimitMs
      await Promise.all(run.senders.map((send) => pump(send, perDevice, spec.window, deadline, phase)))
      const cpu1 = await server.cpu()
      // Relays trail the last ack a little; the next phase starts once they are in (bounded).
      await waitUntil(() => phase.delivered >= phase.acked * fanout, 15_000)
      run.sentTotal += phase.sent
      run.ackedTotal += phase.acked
      if (measure) {
        run.measured.push(phase)
        run.cpuUs += cpu1.userUs + cpu1.systemUs - cpu0.userUs - cpu0.systemUs
      }
    }

    await runPhase(json, spec.warmupPerDevice, false)
    await runPhase(yjs, spec.warmupPerDevice, false)
    const half = Math.ceil(spec.changesPerDevice / 2)
    await runPhase(json, half, true)
    await runPhase(yjs, half, true)
    await runPhase(yjs, spec.changesPerDevice - half, true)
    await runPhase(json, spec.changesPerDevice - half, true)

    const jsonClips = await jsonClipsOnServer(server, jsonUser)
    const yjsClips = await yjsClipsOnServer(server, yjsUser)
    const jsonRate = totals('json', json, fanout, jsonClips)
    const yjsRate = totals('yjs', yjs, fanout, yjsClips)
    return {
      name: spec.name,
      devices: spec.devices,
      window: spec.window,
      json: jsonRate,
      yjs: yjsRate,
      ratio: {
        ackedPerSec: jsonRate.ackedPerSec / yjsRate.ackedPerSec,
        serverCpuPerChange: jsonRate.serverCpuUsPerChange / yjsRate.serverCpuUsPerChange,
        ackP50: jsonRate.ackP50Ms / yjsRate.ackP50Ms,
        ackP99: jsonRate.ackP99Ms / yjsRate.ackP99Ms,
      },
      deviceErrors: [...jsonDevices, ...yjsDevices].flatMap((d) => d.errors.map((e) => `${d.deviceId}: ${e}`)).slice(0, 5),
      serverStartMs: server.startMs,
    }
  } finally {
    for (const d of jsonDevices) d.close()
    for (const d of yjsDevices) d.close()
  }
}

function totals(path: 'json' | 'yjs', run: PathRun, fanout: number, verifiedClips: number): PathRate {
  const phases = run.measured
  const sum = (f: (p: Phase) => number) => phases.reduce((s, p) => s + f(p), 0)
  const ackMs = phases.flatMap((p) => p.ackMs)
  const deliveryMs = phases.flatMap((p) => p.deliveryMs)
  const acked = sum((p) => p.acked)
  const sent = sum((p) => p.sent)
  const failed = sum((p) => p.failed)
  const wallSec = sum((p) => (p.acked > 0 ? p.lastAckAt - p.firstSendAt : 0)) / 1000
  return {
    path,
    sent,
    acked,
    failed,
    unanswered: sent - acked - failed,
    firstError: phases.find((p) => p.firstError !== undefined)?.firstError ?? null,
    oddAcks: sum((p) => p.oddAcks),
    wallSec,
    ackedPerSec: acked / wallSec,
    serverCpuUsPerChange: run.cpuUs / acked,
    ackP50Ms: percentile(ackMs, 50),
    ackP99Ms: percentile(ackMs, 99),
    deliveriesExpected: acked * fanout,
    delivered: deliveryMs.length,
    unmatchedRelays: sum((p) => p.unmatchedRelays),
    deliveryP50Ms: percentile(deliveryMs, 50),
    deliveryP99Ms: percentile(deliveryMs, 99),
    verifiedClips,
    expectedClipsMin: run.ackedTotal,
    expectedClipsMax: run.sentTotal,
  }
}

async function jsonClipsOnServer(server: ServerHandle, userId: string): Promise<number> {
  const d = new BenchJsonDevice(server.url, await tokenFor(userId), `verifier-json-${Date.now()}`, userId)
  try {
    return (await d.connectAndSync(5000)).clips
  } finally {
    d.close()
  }
}

async function yjsClipsOnServer(server: ServerHandle, userId: string): Promise<number> {
  const d = new BenchDevice(server.url, await tokenFor(userId), `verifier-yjs-${Date.now()}`, userId)
  try {
    const t = await d.connectAndSync()
    Y.applyUpdate(d.doc, t.update)
    return d.doc.getMap('clips').size
  } finally {
    d.close()
  }
}

// ---------------------------------------------------------------------------
// Full change-log sync of a large document, beside the Yjs initial sync

export interface ChangeLogSample extends ChangeLogTiming {
  serverCpuMs: number
}

export interface ChangeLogRow {
  /** Page size asked for; null = the server's default (500). */
  limit: number | null
  warm: ChangeLogSample[]
  cold: ChangeLogSample[]
  warmMedian: ChangeLogSample | null
  coldMedian: ChangeLogSample | null
}

export interface ChangeLogSyncResult {
  rows: ChangeLogRow[]
  /** Every sample delivered every clip of the document. */
  complete: boolean
  expectedClips: number
  problems: string[]
}

function medianLog(samples: readonly ChangeLogSample[]): ChangeLogSample | null {
  if (samples.length === 0) return null
  const m = (f: (s: ChangeLogSample) => number) => median(samples.map(f))
  const wire = samples.map((s) => s.wireBytes).filter((v): v is number => v !== undefined)
  return {
    connectMs: m((s) => s.connectMs),
    firstPageMs: m((s) => s.firstPageMs),
    requestToCompleteMs: m((s) => s.requestToCompleteMs),
    totalMs: m((s) => s.totalMs),
    pages: m((s) => s.pages),
    changes: m((s) => s.changes),
    clips: m((s) => s.clips),
    changesJsonBytes: m((s) => s.changesJsonBytes),
    responseJsonBytes: m((s) => s.responseJsonBytes),
    wireBytes: wire.length > 0 ? median(wire) : undefined,
    serverCpuMs: m((s) => s.serverCpuMs),
  }
}

async function freshJsonSync(server: ServerHandle, userId: string, deviceId: string, limit: number | null): Promise<ChangeLogSample> {
  const d = new BenchJsonDevice(server.url, await tokenFor(userId), deviceId, userId)
  try {
    const cpu0 = await server.cpu()
    const timing = await d.connectAndSync(limit ?? undefined, 60_000)
    const cpu1 = await server.cpu()
    return { ...timing, serverCpuMs: (cpu1.userUs + cpu1.systemUs - cpu0.userUs - cpu0.systemUs) / 1000 }
  } finally {
    d.close()
  }
}

/**
 * Fresh JSON devices' full change-log syncs of the document runInitialSync
 * built: `warmReps` of each page size in `limits` with the document loaded
 * (sizes alternating), then one of each size in `coldLimits` right after a
 * restart. The result is read once runInitialSync has returned.
 */
export function changeLogProbe(
  limits: readonly (number | null)[],
  warmReps: number,
  coldLimits: readonly (number | null)[],
): { probe: SameDocumentProbe; result: () => ChangeLogSyncResult } {
  const rows: ChangeLogRow[] = limits.map((limit) => ({ limit, warm: [], cold: [], warmMedian: null, coldMedian: null }))
  let expectedClips = 0
  const probe: SameDocumentProbe = {
    async warm(server, userId, clips) {
      expectedClips = clips
      for (let i = 0; i < warmReps; i++) {
        for (const row of rows) row.warm.push(await freshJsonSync(server, userId, `json-warm-${row.limit ?? 'default'}-${i}`, row.limit))
        await sleep(20)
      }
    },
    coldRuns: coldLimits.length,
    async cold(server, userId, run) {
      const row = rows.find((r) => r.limit === coldLimits[run])
      if (row) row.cold.push(await freshJsonSync(server, userId, `json-cold-${row.limit ?? 'default'}`, row.limit))
    },
  }
  const result = (): ChangeLogSyncResult => {
    const problems: string[] = []
    for (const row of rows) {
      row.warmMedian = medianLog(row.warm)
      row.coldMedian = medianLog(row.cold)
      for (const s of [...row.warm, ...row.cold]) {
        if (s.clips !== expectedClips || s.changes !== expectedClips) {
          problems.push(`limit ${row.limit ?? 'default'}: ${s.clips} clips in ${s.changes} records, expected ${expectedClips}`)
        }
      }
    }
    return { rows, complete: problems.length === 0, expectedClips, problems: problems.slice(0, 5) }
  }
  return { probe, result }
}
