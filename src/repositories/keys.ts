/**
 * LevelDB key layout, version 1. Keys are bytes so that scans come back in order:
 *
 *   "v1" 0x00 "doc" 0x00 <u16 BE byte length of docId> <docId utf-8> <section> ...
 *
 * The length prefix keeps one document's keys from ever being a prefix range of
 * another's, whatever characters a user id holds. Sections:
 *
 *   'u' <u64 BE seq>   one entry of the update log (an update, or after compaction
 *                      the merged state of every entry before it)
 *   'm' <name utf-8>   per-document metadata (the commit clock)
 */

const encoder = new TextEncoder()
const ROOT = encoder.encode('v1\x00doc\x00')
const SECTION_UPDATE = 0x75 // 'u'
const SECTION_META = 0x6d // 'm'

function docPrefix(docId: string, section: number, extra: number): { key: Uint8Array; offset: number } {
  const id = encoder.encode(docId)
  if (id.length > 0xffff) throw new RangeError('document id too long')
  const key = new Uint8Array(ROOT.length + 2 + id.length + 1 + extra)
  key.set(ROOT, 0)
  let offset = ROOT.length
  key[offset++] = id.length >>> 8
  key[offset++] = id.length & 0xff
  key.set(id, offset)
  offset += id.length
  key[offset++] = section
  return { key, offset }
}

export function updateKey(docId: string, seq: number): Uint8Array {
  const { key, offset } = docPrefix(docId, SECTION_UPDATE, 8)
  new DataView(key.buffer).setBigUint64(offset, BigInt(seq))
  return key
}

export function seqOfUpdateKey(key: Uint8Array): number {
  return Number(new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(key.byteLength - 8))
}

/** The range holding every log entry of one document, oldest first. */
export function updateRange(docId: string): { gte: Uint8Array; lt: Uint8Array } {
  const gte = docPrefix(docId, SECTION_UPDATE, 0).key
  const lt = docPrefix(docId, SECTION_UPDATE + 1, 0).key
  return { gte, lt }
}

export function metaKey(docId: string, name: string): Uint8Array {
  const n = encoder.encode(name)
  const { key, offset } = docPrefix(docId, SECTION_META, n.length)
  key.set(n, offset)
  return key
}
