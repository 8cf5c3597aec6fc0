/**
 * The JSON path (protocol §5) against the Yjs path, measured in the
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
import { pump, SendTally } from './load.js'
import { clipsOnServer, medians, tokenFor, watchRelays, withServerCpu, type AckAndDelivery, type SameDocumentProbe } from './scenarios.js'
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

/** One path's figures; the clips verified are a fresh device's of this path's user. */
export interface PathRate extends AckAndDelivery {
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

class Phase extends SendTally {
  oddAcks = 0
  firstSendAt = Number.NaN
}

/** Sends one new clip; `reply` gets ok, or the error. Returns the key its relays carry. */
type SendClip = (reply: (ok: boolean, odd: boolean, error: string | undefined) => void) => string

/** Keeps `window` clips in flight from one device until `count` are sent or `deadline`; resolves when all are answered. */
function pumpClips(send: SendClip, count: number, window: number, deadline: number, phase: Phase): Promise<void> {
  return pump(count, window, deadline, (answered) => {
    const at = performance.now()
    if (Number.isNaN(phase.firstSendAt)) phase.firstSendAt = at
    phase.sent++
    const key = send((ok, odd, error) => {
      phase.answered(at, ok, error)
      if (ok && odd) phase.oddAcks++
      answered()
    })
    phase.sentAt.set(key, at)
  })
}

const relayTo = (phase: () => Phase) => (key: string, at: number) => phase().relayed(key, at)

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
    watchRelays(yjsDevices, () => yjs.phase)
    const fanout = spec.devices - 1

    const runPhase = async (run: PathRun, perDevice: number, measure: boolean) => {
      const phase = new Phase()
      run.phase = phase
      const { cpuUs } = await withServerCpu(server, () => {
        const deadline = performance.now() + spec.timeLimitMs
        return Promise.all(run.senders.map((send) => pumpClips(send, perDevice, spec.window, deadline, phase)))
      })
      // Relays trail the last ack a little; the next phase starts once they are in (bounded).
      await waitUntil(() => phase.delivered >= phase.acked * fanout, 15_000)
      run.sentTotal += phase.sent
      run.ackedTotal += phase.acked
      if (measure) {
        run.measured.push(phase)
        run.cpuUs += cpuUs
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
    const yjsClips = await clipsOnServer(server, yjsUser, `verifier-yjs-${Date.now()}`)
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
  const wire = samples.map((s) => s.wireBytes).filter((v): v is number => v !== undefined)
  return {
    ...medians(samples, ['connectMs', 'firstPageMs', 'requestToCompleteMs', 'totalMs', 'pages', 'changes', 'clips', 'changesJsonBytes', 'responseJsonBytes']),
    wireBytes: wire.length > 0 ? median(wire) : undefined,
    ...medians(samples, ['serverCpuMs']),
  }
}

async function freshJsonSync(server: ServerHandle, userId: string, deviceId: string, limit: number | null): Promise<ChangeLogSample> {
  const d = new BenchJsonDevice(server.url, await tokenFor(userId), deviceId, userId)
  try {
    const { result: timing, cpuUs } = await withServerCpu(server, () => d.connectAndSync(limit ?? undefined, 60_000))
    return { ...timing, serverCpuMs: cpuUs / 1000 }
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
