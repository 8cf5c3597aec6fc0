/**
 * The LevelDB key layout (src/repositories/keys.ts) is on disk: keys built by
 * the fast paths must be byte for byte those of the documented layout.
 */
import { describe, expect, it } from 'vitest'
import {
  byTimeAfter,
  byTimeKey,
  changeIdKey,
  conflictKey,
  deviceKey,
  entityKeyBytes,
  metaKey,
  parseByTimeKey,
  prefixLength,
  Section,
  seqOfUpdateKey,
  updateKey,
} from '../src/repositories/keys.js'

const utf8 = (s: string) => new TextEncoder().encode(s)

/** The layout as documented: "v1" 0 "doc" 0 <u16 BE length> <docId> <section> <suffix>. */
function reference(docId: string, section: number, ...suffix: Uint8Array[]): Uint8Array {
  const id = utf8(docId)
  const parts = [utf8('v1\x00doc\x00'), new Uint8Array([id.length >>> 8, id.length & 0xff]), id, new Uint8Array([section]), ...suffix]
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.length
  }
  return out
}

function u64(n: number): Uint8Array {
  const bytes = new Uint8Array(8)
  new DataView(bytes.buffer).setBigUint64(0, BigInt(n))
  return bytes
}

const DOC_IDS = ['u1', 'user-ü-ß-日本', 'x'.repeat(300), 'a\x00b', '']
const NAMES = ['clip:abc', 'clip:ü-日本', 'n'.repeat(100), 'folder:\x7f', '']
const NUMBERS = [0, 1, 255, 256, 2 ** 32 - 1, 2 ** 32, 1_764_000_000_000, Number.MAX_SAFE_INTEGER - 1]

describe('LevelDB keys', () => {
  it('are the documented bytes for every kind of key', () => {
    for (const docId of DOC_IDS) {
      expect(prefixLength(docId)).toBe(reference(docId, Section.META).length)
      for (const n of NUMBERS) {
        expect(updateKey(docId, n)).toEqual(reference(docId, Section.UPDATE, u64(n)))
        expect(seqOfUpdateKey(updateKey(docId, n))).toBe(n)
        expect(byTimeAfter(docId, n)).toEqual(reference(docId, Section.BY_TIME, u64(n + 1)))
      }
      for (const name of NAMES) {
        expect(metaKey(docId, name)).toEqual(reference(docId, Section.META, utf8(name)))
        expect(entityKeyBytes(docId, name)).toEqual(reference(docId, Section.ENTITY, utf8(name)))
        expect(conflictKey(docId, name)).toEqual(reference(docId, Section.CONFLICT, utf8(name)))
        expect(changeIdKey(docId, name)).toEqual(reference(docId, Section.CHANGE_ID, utf8(name)))
        expect(deviceKey(docId, name)).toEqual(reference(docId, Section.DEVICE, utf8(name)))
        for (const ts of NUMBERS) {
          const key = byTimeKey(docId, ts, name)
          expect(key).toEqual(reference(docId, Section.BY_TIME, u64(ts), utf8(name)))
          expect(parseByTimeKey(docId, key)).toEqual({ ts, entityKey: name })
        }
      }
    }
  })

  it('sort by sequence and by timestamp', () => {
    const compare = (a: Uint8Array, b: Uint8Array) => Buffer.compare(a, b)
    const sorted = [...NUMBERS].sort((a, b) => a - b)
    expect(sorted.map((n) => updateKey('d', n)).sort(compare)).toEqual(sorted.map((n) => updateKey('d', n)))
    expect(sorted.map((n) => byTimeKey('d', n, 'clip:z')).sort(compare)).toEqual(sorted.map((n) => byTimeKey('d', n, 'clip:z')))
  })
})
