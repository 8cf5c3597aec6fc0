/**
 * What conflict detection and indexing cost on the Yjs path, in-process (no
 * server, no socket, no disk): small updates that each write the `content`
 * field (a `manual` field, protocol §6) of an existing clip of a
 * document of many clips, applied
 *   (a) with `Y.applyUpdate` alone;
 *   (d) not applied: only decoded and inspected (`decodeClientUpdate` +
 *       `inspectUpdate`), the part that finds overwritten manual fields;
 *   (b) the server's Yjs path work: decode + inspect + apply in a transaction +
 *       `touchedEntities` / `recordTouched` on a SyncDocument;
 *   (c) `stageYjsUpdate` with its commit awaited, the whole path (conflict records, restoring
 *       the current value, queueing the commit), its store stubbed out.
 * Three kinds of update: made by a device that saw the current value (the
 * ordinary case: nothing to detect), and blind overwrites made on a stale
 * replica (another device changed the field since): every one is a conflict.
 * Of those, Yjs itself keeps the current value when the stale replica's client
 * id is the lower one, and takes the stale value when it is the higher one
 * (then the server writes the current value back): both are measured, with
 * client ids chosen for each.
 * Rates are per second of this process's CPU time, so that other processes
 * on a busy machine do not skew one path against another.
 */
import * as Y from 'yjs'
import type { DocumentRepository } from '../../src/repositories/document.repository.js'
import { recordTouched, touchedEntities, unindexedEntities } from '../../src/services/entity-index.js'
import { SyncDocument } from '../../src/services/sync-document.js'
import { UpdateCommitter } from '../../src/services/update-committer.js'
import { decodeClientUpdate, isEmptyUpdate } from '../../src/services/update-validator.js'
import { inspectUpdate } from '../../src/services/yjs-inspector.js'
import { stageYjsUpdate, type AppliedUpdate } from '../../src/services/yjs-updates.js'
import type { TransactionOrigin } from '../../src/types/origins.js'
import type { Logger } from '../../src/utils/logger.js'
import { CONTENT } from './device.js'
import { mean, median } from './stats.js'

export interface PathRates {
  /** (a) Y.applyUpdate alone, updates/s. */
  applyPerSec: number
  /** decodeClientUpdate alone (Y.decodeUpdate), updates/s: the decode part of (d). */
  decodePerSec: number
  /** (d) decode + inspectUpdate, not applied, updates/s. */
  inspectPerSec: number
  /** (b) decode + inspect + apply in a transaction + touchedEntities/recordTouched, updates/s. */
  serverWorkPerSec: number
  /** (c) stageYjsUpdate and its commit (store stubbed), updates/s. */
  applyYjsUpdatePerSec: number
  /** b ÷ a as a cost ratio: (time per update of b) ÷ (time per update of a), from the median rates. */
  costRatio: number
  /** c ÷ a, likewise. */
  fullCostRatio: number
  /** Per update, µs: a, decode, d, b − a − d (transaction wrapper + index), c − b (conflicts, restores, commit). */
  applyUs: number
  decodeUs: number
  inspectUs: number
  indexUs: number
  restOfPathUs: number
  /** Manual-field overwrites inspectUpdate found per update (0 when the writer saw the value; 1 when blind). */
  overwritesPerUpdate: number
  /** Conflicts the Yjs path recorded per update. */
  conflictsPerUpdate: number
  /** Updates the Yjs path answered with a fixup (the current value written back). */
  fixupsPerUpdate: number
  /** After (c), every edited clip holds the value it should (the writer's, or the current one when blind). */
  valuesRight: boolean
}

export interface YjsPathResult {
  clips: number
  /** Updates per measured batch, of each kind; `rounds` batches of each (rates: medians over the batches). */
  updates: number
  rounds: number
  meanUpdateBytes: number
  seen: PathRates
  /** Blind overwrites that Yjs orders before the current value: detected, recorded, nothing written back. */
  blindKept: PathRates
  /** Blind overwrites that Yjs lets win: detected, recorded, and the current value written back. */
  blindRestored: PathRates
}

const DEVICE = 'bench-device'
const silent: Logger = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined }
/** The store is not what is measured here: writes vanish. Compaction is never due. */
const nullRepo = { write: () => Promise.resolve() } as unknown as DocumentRepository

function seedState(clips: number): Uint8Array {
  const doc = new Y.Doc()
  const map = doc.getMap<Y.Map<unknown>>('clips')
  for (let done = 0; done < clips; done += 1000) {
    doc.transact(() => {
      for (let i = done; i < Math.min(clips, done + 1000); i++) {
        const clip = new Y.Map<unknown>()
        clip.set('content', `${CONTENT} #${i}`)
        clip.set('contentType', 'text')
        clip.set('createdAt', 1_700_000_000_000 + i)
        map.set(`clip-${i}`, clip)
      }
    })
  }
  const state = Y.encodeStateAsUpdate(doc)
  doc.destroy()
  return state
}

function replicaOf(state: Uint8Array, clientID?: number): Y.Doc {
  const doc = new Y.Doc()
  if (clientID !== undefined) doc.clientID = clientID
  Y.applyUpdate(doc, state)
  return doc
}

/** One update per clip `from`..`from + count - 1`, each setting `content` to `value(i)` in its own transaction. */
function contentEdits(doc: Y.Doc, from: number, count: number, value: (i: number) => string): Uint8Array[] {
  const out: Uint8Array[] = []
  let captured: Uint8Array | undefined
  const listener = (u: Uint8Array) => (captured = u)
  doc.on('update', listener)
  const clips = doc.getMap<Y.Map<unknown>>('clips')
  for (let i = from; i < from + count; i++) {
    const clip = clips.get(`clip-${i}`)
    if (!clip) throw new Error(`no clip-${i}`)
    captured = undefined
    doc.transact(() => clip.set('content', value(i)))
    if (!captured) throw new Error('no update')
    out.push(captured)
  }
  doc.off('update', listener)
  return out
}

/**
 * Runs `step` over `updates` until done or `maxMs` of wall time; returns how
 * many ran and updates per second of this process's CPU time (user + system,
 * all threads: GC included), which other processes on a busy machine do not
 * inflate as they do wall time.
 */
function timed(updates: readonly Uint8Array[], maxMs: number, step: (u: Uint8Array) => void): { done: number; perSec: number } {
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  let done = 0
  for (const u of updates) {
    step(u)
    done++
    if ((done & 63) === 0 && performance.now() - t0 > maxMs) break
  }
  const cpu = process.cpuUsage(cpu0)
  return { done, perSec: done / ((cpu.user + cpu.system) / 1e6) }
}

/**
 * Updates a server handles at once in (c): its group commit settles them
 * together, and each suspended call holds its transaction until then. Holding
 * thousands would measure the garbage collector, not the path.
 */
const IN_FLIGHT = 8

/** As `timed`, for `step`s that take IN_FLIGHT updates and settle them. */
async function timedGroups(
  updates: readonly Uint8Array[],
  maxMs: number,
  step: (group: readonly Uint8Array[]) => Promise<void>,
): Promise<{ done: number; perSec: number }> {
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  let done = 0
  while (done < updates.length && performance.now() - t0 <= maxMs) {
    const group = updates.slice(done, done + IN_FLIGHT)
    await step(group)
    done += group.length
  }
  const cpu = process.cpuUsage(cpu0)
  return { done, perSec: done / ((cpu.user + cpu.system) / 1e6) }
}

function syncDocumentOf(state: Uint8Array): SyncDocument {
  const sync = new SyncDocument('bench-doc', {
    log: { updates: [state], firstSeq: 0, nextSeq: 1, bytes: state.byteLength },
    clock: 0,
    entities: [],
    conflicts: [],
    changes: [],
  })
  // As the server has it: every entity indexed.
  recordTouched(sync, unindexedEntities(sync), 'seed')
  return sync
}

/**
 * The four ways of taking updates, each on its own copy of one document.
 * Measured batches write disjoint sets of clips, so the copies can be reused
 * from batch to batch (loading a 10,000-clip document takes longer than
 * applying thousands of small updates to it).
 */
class Targets {
  readonly plain: Y.Doc
  readonly inspected: Y.Doc
  readonly server: SyncDocument
  readonly full: SyncDocument
  private readonly committer = new UpdateCommitter(nullRepo, { compactMaxUpdates: 10_000_000, compactMaxBytes: 1 << 30 }, () => undefined, silent)
  private readonly origin: TransactionOrigin = { source: 'yjs', deviceId: DEVICE }
  private readonly author = { userId: 'bench-user', deviceId: DEVICE }

  constructor(state: Uint8Array) {
    this.plain = replicaOf(state)
    this.inspected = replicaOf(state)
    this.server = syncDocumentOf(state)
    this.full = syncDocumentOf(state)
  }

  /**
   * One batch through each path; `rotate` turns the order the paths run in
   * (so that none always runs first, or right after another's garbage).
   */
  async measure(b: Batch, maxMs: number, rotate: number): Promise<Round> {
    const { plain, inspected, server, origin, full, committer, author } = this
    let a = { done: 0, perSec: Number.NaN }
    let d = { done: 0, perSec: Number.NaN }
    let e = { done: 0, perSec: Number.NaN }
    let bRun = { done: 0, perSec: Number.NaN }
    let c = { done: 0, perSec: Number.NaN }
    let overwrites = 0
    const applied: AppliedUpdate[] = []
    const paths: (() => Promise<void> | void)[] = [
      // (a)
      () => {
        a = timed(b.updates, maxMs, (u) => Y.applyUpdate(plain, u))
      },
      // (d): never applied to its copy; each update writes its own clip, so the answer is the same as in sequence.
      () => {
        d = timed(b.updates, maxMs, (u) => {
          const decoded = decodeClientUpdate(u)
          if (!isEmptyUpdate(decoded)) overwrites += inspectUpdate(inspected, decoded).overwrites.length
        })
      },
      // decode alone
      () => {
        e = timed(b.updates, maxMs, (u) => {
          if (isEmptyUpdate(decodeClientUpdate(u))) throw new Error('empty update')
        })
      },
      // (b): the steps of stageYjsUpdate up to its conflict handling, and its indexing.
      () => {
        bRun = timed(b.updates, maxMs, (u) => {
          const decoded = decodeClientUpdate(u)
          if (isEmptyUpdate(decoded)) return
          inspectUpdate(server.doc, decoded)
          const transactions: Y.Transaction[] = []
          Y.transact(
            server.doc,
            (tr) => {
              transactions.push(tr)
              Y.applyUpdate(server.doc, u, origin)
            },
            origin,
          )
          recordTouched(server, touchedEntities(server.doc, transactions), DEVICE)
        })
      },
      // (c): IN_FLIGHT calls at a time, each group settled (one group commit, store stubbed) before the next.
      async () => {
        c = await timedGroups(b.updates, maxMs, async (group) => {
          const staged = group.map((u) => stageYjsUpdate(full, committer, u, author, false, undefined))
          await Promise.all(staged.map((s) => s.durable))
          applied.push(...staged.map((s) => s.applied))
        })
      },
    ]
    // No forced GC in between: after one, the next few thousand updates run at half speed here (code and caches go cold).
    for (let i = 0; i < paths.length; i++) await paths[(i + rotate) % paths.length]?.()

    const clips = full.doc.getMap<Y.Map<unknown>>('clips')
    let valuesRight = true
    for (let i = b.from; i < b.from + c.done; i++) if (clips.get(`clip-${i}`)?.get('content') !== b.expected(i)) valuesRight = false
    return {
      apply: a.perSec,
      decode: e.perSec,
      inspect: d.perSec,
      serverWork: bRun.perSec,
      full: c.perSec,
      overwrites: overwrites / d.done,
      conflicts: applied.reduce((s, r) => s + r.conflicts.length, 0) / applied.length,
      fixups: applied.reduce((s, r) => s + (r.fixups.length > 0 ? 1 : 0), 0) / applied.length,
      valuesRight,
    }
  }

  destroy(): void {
    for (const doc of [this.plain, this.inspected, this.server.doc, this.full.doc]) doc.destroy()
  }
}

/** Updates writing `content` of clips `from`.. in order, and the value each clip must end with. */
interface Batch {
  from: number
  updates: Uint8Array[]
  expected: (i: number) => string
}

interface Round {
  apply: number
  decode: number
  inspect: number
  serverWork: number
  full: number
  overwrites: number
  conflicts: number
  fixups: number
  valuesRight: boolean
}

function rates(rounds: readonly Round[]): PathRates {
  const mid = (f: (r: Round) => number) => median(rounds.map(f))
  const applyPerSec = mid((r) => r.apply)
  const decodePerSec = mid((r) => r.decode)
  const inspectPerSec = mid((r) => r.inspect)
  const serverWorkPerSec = mid((r) => r.serverWork)
  const applyYjsUpdatePerSec = mid((r) => r.full)
  const us = (perSec: number) => 1e6 / perSec
  const last = rounds.at(-1)
  return {
    applyPerSec,
    decodePerSec,
    inspectPerSec,
    serverWorkPerSec,
    applyYjsUpdatePerSec,
    costRatio: applyPerSec / serverWorkPerSec,
    fullCostRatio: applyPerSec / applyYjsUpdatePerSec,
    applyUs: us(applyPerSec),
    decodeUs: us(decodePerSec),
    inspectUs: us(inspectPerSec),
    indexUs: us(serverWorkPerSec) - us(applyPerSec) - us(inspectPerSec),
    restOfPathUs: us(applyYjsUpdatePerSec) - us(serverWorkPerSec),
    overwritesPerUpdate: last?.overwrites ?? Number.NaN,
    conflictsPerUpdate: last?.conflicts ?? Number.NaN,
    fixupsPerUpdate: last?.fixups ?? Number.NaN,
    valuesRight: rounds.every((r) => r.valuesRight),
  }
}

const seenValue = (i: number) => `edited on a device that saw the current value #${i}`
const currentValue = (i: number) => `edited on another device first #${i}`
const staleValue = (i: number) => `overwritten on a stale replica #${i}`

/** The document before the measured updates, and `rounds` batches of `n` updates on disjoint clips. */
interface Kind {
  pre: Uint8Array
  batches: Batch[]
}

/** Client ids of the blind kinds' writers: of two concurrent map writes, Yjs keeps the one of the higher client id. */
const OTHER_CLIENT = 2_000_000
const STALE_LOSES_CLIENT = 1_000_000
const STALE_WINS_CLIENT = 3_000_000

/**
 * Documents of `size` clips. Seen: a device that saw every clip's value edits
 * them. Blind: another device edits every clip first (the server has those
 * edits), then a stale replica, which saw only the original values, edits
 * them too; its client id decides whether Yjs keeps the current value.
 */
function kinds(size: number, n: number, rounds: number): { seen: Kind; blindKept: Kind; blindRestored: Kind } {
  const base = seedState(size)
  const device = replicaOf(base)
  const other = replicaOf(base, OTHER_CLIENT)
  contentEdits(other, 0, size, currentValue)
  const blindPre = Y.encodeStateAsUpdate(other)
  other.destroy()
  const loser = replicaOf(base, STALE_LOSES_CLIENT)
  const winner = replicaOf(base, STALE_WINS_CLIENT)
  const seen: Kind = { pre: base, batches: [] }
  const blindKept: Kind = { pre: blindPre, batches: [] }
  const blindRestored: Kind = { pre: blindPre, batches: [] }
  for (let r = 0; r < rounds; r++) {
    const from = r * n
    seen.batches.push({ from, updates: contentEdits(device, from, n, seenValue), expected: seenValue })
    blindKept.batches.push({ from, updates: contentEdits(loser, from, n, staleValue), expected: currentValue })
    blindRestored.batches.push({ from, updates: contentEdits(winner, from, n, staleValue), expected: currentValue })
  }
  for (const d of [device, loser, winner]) d.destroy()
  return { seen, blindKept, blindRestored }
}

/**
 * `rounds` batches of `perRound` updates of each kind against documents of
 * `clips` clips, the order of the paths turned from batch to batch, after a
 * warm-up on small documents and one unmeasured batch on the large ones (the
 * first batch after loading them runs at a fraction of the speed: the loads'
 * garbage). Rates are medians over the batches; a measurement stops after
 * `maxMs`.
 */
export async function measureYjsPath(clips = 10_000, perRound = 2000, rounds = 4, maxMs = 1500): Promise<YjsPathResult> {
  const count = Math.min(perRound, Math.floor(clips / (rounds + 1)))

  // Warm-up (the JIT): the same paths on small documents.
  const warm = kinds(1000, 500, 1)
  for (const kind of [warm.seen, warm.blindKept, warm.blindRestored]) {
    const t = new Targets(kind.pre)
    for (const b of kind.batches) await t.measure(b, maxMs, 0)
    t.destroy()
  }

  const { seen, blindKept, blindRestored } = kinds(clips, count, rounds + 1)
  const measureKind = async (kind: Kind): Promise<Round[]> => {
    const targets = new Targets(kind.pre)
    try {
      const out: Round[] = []
      for (const [r, batch] of kind.batches.entries()) {
        const round = await targets.measure(batch, maxMs, r)
        if (r > 0) out.push(round)
      }
      return out
    } finally {
      targets.destroy()
    }
  }
  const seenRounds = await measureKind(seen)
  const keptRounds = await measureKind(blindKept)
  const restoredRounds = await measureKind(blindRestored)
  const all = [seen, blindKept, blindRestored].flatMap((k) => k.batches.flatMap((b) => b.updates))
  return {
    clips,
    updates: count,
    rounds,
    meanUpdateBytes: mean(all.map((u) => u.byteLength)),
    seen: rates(seenRounds),
    blindKept: rates(keptRounds),
    blindRestored: rates(restoredRounds),
  }
}
