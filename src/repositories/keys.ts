/**
 * LevelDB key layout, version 1. Keys are bytes so that scans come back in order:
 *
 *   "v1" 0x00 "doc" 0x00 <u16 BE byte length of docId> <docId utf-8> <section> ...
 *
 * The length prefix keeps one document's keys from ever being a prefix range of
 * another's, whatever characters a user id holds. Sections:
 *
 *   'u' <u64 BE seq>        one entry of the update log (an update, or after
 *                           compaction the merged state of every entry before it)
 *   'm' <name>              per-document metadata (the commit clock)
 *   'e' <type> 0x00 <id>    the entity index: an EntityRecord (JSON)
 *   't' <u64 BE ts> <type> 0x00 <id>
 *                           the entity index ordered by server timestamp (empty value)
 *   'c' <conflict id>       a SyncConflict (JSON)
 *   'i' <change id>         an applied change id and its ack (JSON), for idempotency
 *   'd' <device id>         a device's last completed sync (JSON)
 */

const encoder = new TextEncoder()
const decoder = new TextDecoder()
const ROOT = encoder.encode('v1\x00doc\x00')

export const Section = {
  UPDATE: 0x75, // 'u'
  META: 0x6d, // 'm'
  ENTITY: 0x65, // 'e'
  BY_TIME: 0x74, // 't'
  CONFLICT: 0x63, // 'c'
  CHANGE_ID: 0x69, // 'i'
  DEVICE: 0x64, // 'd'
} as const
type SectionByte = (typeof Section)[keyof typeof Section]

function prefixed(docId: string, section: number, extra: number): { key: Uint8Array; offset: number } {
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

function withSuffix(docId: string, section: SectionByte, suffix: Uint8Array): Uint8Array {
  const { key, offset } = prefixed(docId, section, suffix.length)
  key.set(suffix, offset)
  return key
}

function u64(n: number): Uint8Array {
  const bytes = new Uint8Array(8)
  new DataView(bytes.buffer).setBigUint64(0, BigInt(n))
  return bytes
}

/** The byte length of a document's key prefix, including the section byte. */
export function prefixLength(docId: string): number {
  return ROOT.length + 2 + encoder.encode(docId).length + 1
}

/** Every key of one section of one document. */
export function sectionRange(docId: string, section: SectionByte): { gte: Uint8Array; lt: Uint8Array } {
  return { gte: prefixed(docId, section, 0).key, lt: prefixed(docId, section + 1, 0).key }
}

export const updateKey = (docId: string, seq: number): Uint8Array => withSuffix(docId, Section.UPDATE, u64(seq))

export function seqOfUpdateKey(key: Uint8Array): number {
  return Number(new DataView(key.buffer, key.byteOffset, key.byteLength).getBigUint64(key.byteLength - 8))
}

export const metaKey = (docId: string, name: string): Uint8Array =>
  withSuffix(docId, Section.META, encoder.encode(name))

export const entityKeyBytes = (docId: string, entityKey: string): Uint8Array =>
  withSuffix(docId, Section.ENTITY, encoder.encode(entityKey))

export function byTimeKey(docId: string, ts: number, entityKey: string): Uint8Array {
  const name = encoder.encode(entityKey)
  const suffix = new Uint8Array(8 + name.length)
  suffix.set(u64(ts), 0)
  suffix.set(name, 8)
  return withSuffix(docId, Section.BY_TIME, suffix)
}

/** The first by-time key after every key of timestamp `ts`. */
export const byTimeAfter = (docId: string, ts: number): Uint8Array => withSuffix(docId, Section.BY_TIME, u64(ts + 1))

/** Splits a by-time key into its timestamp and entity key. */
export function parseByTimeKey(docId: string, key: Uint8Array): { ts: number; entityKey: string } {
  const at = prefixLength(docId)
  const ts = Number(new DataView(key.buffer, key.byteOffset + at, 8).getBigUint64(0))
  return { ts, entityKey: decoder.decode(key.subarray(at + 8)) }
}

export const conflictKey = (docId: string, id: string): Uint8Array =>
  withSuffix(docId, Section.CONFLICT, encoder.encode(id))
export const changeIdKey = (docId: string, id: string): Uint8Array =>
  withSuffix(docId, Section.CHANGE_ID, encoder.encode(id))
export const deviceKey = (docId: string, id: string): Uint8Array => withSuffix(docId, Section.DEVICE, encoder.encode(id))
