/**
 * In-process raw limits, for scale: how fast this machine applies the same
 * kind of small clip update to a Y.Doc, and how fast LevelDB commits synced
 * batches. Run in the bench process while no server is running.
 */
import { randomBytes } from 'node:crypto'
import { Level } from 'level'
import * as Y from 'yjs'
import { putClips } from './device.js'
import { makeTempDir, removeTempDir } from './server.js'
import { mean } from './stats.js'

export interface ApplyLimits {
  /** Y.applyUpdate of one small clip update (its own transaction), updates/s. */
  applyPerSec: number
  /** Y.decodeUpdate (the server's validation) then Y.applyUpdate, updates/s. */
  decodeApplyPerSec: number
  updates: number
  meanUpdateBytes: number
}

export interface LevelLimits {
  /** Synced batch writes of one ~100-byte put, writes/s (each is one fsync of the log). */
  sync1PerSec: number
  /** Synced batch writes of 100 ~100-byte puts, writes/s. */
  sync100PerSec: number
  /** Unsynced batch writes of one put, writes/s (no fsync). */
  nosync1PerSec: number
}

/** `count` clip updates as `sources` devices would make them (`putClips`, one clip per transaction), interleaved. */
function makeClipUpdates(count: number, sources: number): Uint8Array[] {
  const docs = Array.from({ length: sources }, () => new Y.Doc())
  const out: Uint8Array[] = []
  for (let i = 0; i < count; i++) {
    const s = i % sources
    const doc = docs[s]
    if (!doc) throw new Error('unreachable')
    const before = Y.encodeStateVector(doc)
    putClips(Y, doc, `dev${s}`, Math.floor(i / sources), 1)
    out.push(Y.encodeStateAsUpdate(doc, before))
  }
  for (const d of docs) d.destroy()
  return out
}

/** Applies `updates` in order to a fresh doc, at most `maxMs`; returns updates/s. */
function applyRate(updates: readonly Uint8Array[], maxMs: number, decodeFirst: boolean): number {
  const doc = new Y.Doc()
  const t0 = performance.now()
  let i = 0
  for (; i < updates.length; i++) {
    const u = updates[i]
    if (!u) break
    if (decodeFirst) Y.decodeUpdate(u)
    Y.applyUpdate(doc, u)
    if ((i & 255) === 255 && performance.now() - t0 > maxMs) {
      i++
      break
    }
  }
  const seconds = (performance.now() - t0) / 1000
  const clips = doc.getMap('clips').size
  doc.destroy()
  if (clips !== i) throw new Error(`raw apply: ${clips} clips after ${i} updates`)
  return i / seconds
}

export function measureApply(count = 20_000, maxMs = 3000): ApplyLimits {
  const updates = makeClipUpdates(count, 10)
  applyRate(updates.slice(0, 2000), maxMs, true) // warm up the JIT
  // Interleaved, best of two each: the JIT keeps improving over the first runs, and the machine is noisy.
  let applyPerSec = 0
  let decodeApplyPerSec = 0
  for (let round = 0; round < 2; round++) {
    applyPerSec = Math.max(applyPerSec, applyRate(updates, maxMs, false))
    decodeApplyPerSec = Math.max(decodeApplyPerSec, applyRate(updates, maxMs, true))
  }
  return { applyPerSec, decodeApplyPerSec, updates: updates.length, meanUpdateBytes: mean(updates.map((u) => u.byteLength)) }
}

export async function measureLevel(): Promise<LevelLimits> {
  const dir = await makeTempDir('superclip-bench-level-')
  const db = new Level<Uint8Array, Uint8Array>(`${dir}/db`, { keyEncoding: 'view', valueEncoding: 'view' })
  await db.open()
  const value = randomBytes(100)
  let seq = 0
  const key = () => Buffer.from(`u/bench-doc/${String(seq++).padStart(12, '0')}`)
  const rate = async (puts: number, sync: boolean, maxWrites: number, maxMs: number) => {
    const t0 = performance.now()
    let writes = 0
    while (writes < maxWrites && performance.now() - t0 < maxMs) {
      const batch = db.batch()
      for (let i = 0; i < puts; i++) batch.put(key(), value)
      await batch.write({ sync })
      writes++
    }
    return writes / ((performance.now() - t0) / 1000)
  }
  try {
    await rate(1, true, 200, 500) // warm up
    const sync1PerSec = await rate(1, true, 10_000, 2000)
    const sync100PerSec = await rate(100, true, 2000, 2000)
    const nosync1PerSec = await rate(1, false, 50_000, 1000)
    return { sync1PerSec, sync100PerSec, nosync1PerSec }
  } finally {
    await db.close()
    await removeTempDir(dir)
  }
}
