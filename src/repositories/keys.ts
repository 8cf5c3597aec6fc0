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
 *   'n' <snapshot id>       a snapshot's metadata (JSON)
 *   'N' <snapshot id>       a snapshot's Yjs state
 *   'r' <device id>         a revoked device (JSON: when)
 *
 * Every key of a user lies in `documentRange(docId)`, so erasing a user is one
 * range delete, and the documents can be listed by seeking from one document's
 * range to the next (`nextDocumentId`).
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
  SNAPSHOT: 0x6e, // 'n'
  SNAPSHOT_STATE: 0x4e, // 'N'
  REVOKED: 0x72, // 'r'
} as const
type SectionByte = (typeof Section)[keyof typeof Section]

// Keys are built on every write (four or five per update): the document's prefix is
// reused, and short ASCII strings are copied by hand (TextEncoder costs more per call).

/** `ROOT <u16 length> <docId>` of the documents seen lately (cleared when it grows past PREFIX_CACHE). */
const prefixes = new Map<string, Uint8Array>()
const PREFIX_CACHE = 10_000

function docPrefix(docId: string): Uint8Array {
  let prefix = prefixes.get(docId)
  if (prefix) return prefix
  const id = utf8(docId)
  if (id.length > 0xffff) throw new RangeError('document id too long')
  prefix = new Uint8Array(ROOT.length + 2 + id.length)
  prefix.set(ROOT, 0)
  prefix[ROOT.length] = id.length >>> 8
  prefix[ROOT.length + 1] = id.length & 0xff
  prefix.set(id, ROOT.length + 2)
  if (prefixes.size >= PREFIX_CACHE) prefixes.clear()
  prefixes.set(docId, prefix)
  return prefix
}

/** UTF-8 bytes of `s`; short ASCII (every id and entity key in practice) without TextEncoder. */
function utf8(s: string): Uint8Array {
  if (s.length > 64) return encoder.encode(s)
  const out = new Uint8Array(s.length)
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c > 0x7f) return encoder.encode(s)
    out[i] = c
  }
  return out
}

/** A key of `docId`'s `section` with room for `extra` more bytes at `offset`. */
function prefixed(docId: string, section: number, extra: number): { key: Uint8Array; offset: number } {
  const prefix = docPrefix(docId)
  const key = new Uint8Array(prefix.length + 1 + extra)
  key.set(prefix, 0)
  key[prefix.length] = section
  return { key, offset: prefix.length + 1 }
}

function withSuffix(docId: string, section: SectionByte, suffix: Uint8Array): Uint8Array {
  const { key, offset } = prefixed(docId, section, suffix.length)
  key.set(suffix, offset)
  return key
}

/** `n` (a safe integer ≥ 0) as 8 big-endian bytes at `offset`. */
function writeU64(target: Uint8Array, offset: number, n: number): void {
  const high = Math.floor(n / 0x1_0000_0000)
  const low = n >>> 0
  target[offset] = high >>> 24
  target[offset + 1] = (high >>> 16) & 0xff
  target[offset + 2] = (high >>> 8) & 0xff
  target[offset + 3] = high & 0xff
  target[offset + 4] = low >>> 24
  target[offset + 5] = (low >>> 16) & 0xff
  target[offset + 6] = (low >>> 8) & 0xff
  target[offset + 7] = low & 0xff
}

function readU64(source: Uint8Array, offset: number): number {
  const view = new DataView(source.buffer, source.byteOffset + offset, 8)
  return view.getUint32(0) * 0x1_0000_0000 + view.getUint32(4)
}

function withU64(docId: string, section: SectionByte, n: number, rest?: Uint8Array): Uint8Array {
  const { key, offset } = prefixed(docId, section, 8 + (rest?.length ?? 0))
  writeU64(key, offset, n)
  if (rest) key.set(rest, offset + 8)
  return key
}

/** The byte length of a document's key prefix, including the section byte. */
export function prefixLength(docId: string): number {
  return docPrefix(docId).length + 1
}

/** Every key of one section of one document. */
export function sectionRange(docId: string, section: SectionByte): { gte: Uint8Array; lt: Uint8Array } {
  return { gte: prefixed(docId, section, 0).key, lt: prefixed(docId, section + 1, 0).key }
}

export const updateKey = (docId: string, seq: number): Uint8Array => withU64(docId, Section.UPDATE, seq)

export function seqOfUpdateKey(key: Uint8Array): number {
  return readU64(key, key.byteLength - 8)
}

export const metaKey = (docId: string, name: string): Uint8Array =>
  withSuffix(docId, Section.META, utf8(name))

export const entityKeyBytes = (docId: string, entityKey: string): Uint8Array =>
  withSuffix(docId, Section.ENTITY, utf8(entityKey))

export const byTimeKey = (docId: string, ts: number, entityKey: string): Uint8Array =>
  withU64(docId, Section.BY_TIME, ts, utf8(entityKey))

/** The first by-time key after every key of timestamp `ts`. */
export const byTimeAfter = (docId: string, ts: number): Uint8Array => withU64(docId, Section.BY_TIME, ts + 1)

/** Splits a by-time key into its timestamp and entity key. */
export function parseByTimeKey(docId: string, key: Uint8Array): { ts: number; entityKey: string } {
  const at = prefixLength(docId)
  return { ts: readU64(key, at), entityKey: decoder.decode(key.subarray(at + 8)) }
}

export const conflictKey = (docId: string, id: string): Uint8Array =>
  withSuffix(docId, Section.CONFLICT, utf8(id))
export const changeIdKey = (docId: string, id: string): Uint8Array =>
  withSuffix(docId, Section.CHANGE_ID, utf8(id))
export const deviceKey = (docId: string, id: string): Uint8Array => withSuffix(docId, Section.DEVICE, utf8(id))
export const snapshotKey = (docId: string, id: string): Uint8Array => withSuffix(docId, Section.SNAPSHOT, utf8(id))
export const snapshotStateKey = (docId: string, id: string): Uint8Array => withSuffix(docId, Section.SNAPSHOT_STATE, utf8(id))
export const revokedKey = (docId: string, deviceId: string): Uint8Array => withSuffix(docId, Section.REVOKED, utf8(deviceId))

/** Every key of one document (user), all sections. */
export function documentRange(docId: string): { gte: Uint8Array; lt: Uint8Array } {
  const prefix = docPrefix(docId)
  const lt = new Uint8Array(prefix.length + 1)
  lt.set(prefix, 0)
  lt[prefix.length] = 0xff
  return { gte: prefix, lt }
}

/**
 * Where to seek for the first document after `afterDocId` (from the first
 * document when undefined). Documents come ordered by the byte length of
 * their id, then by its bytes: a stable order for paging.
 */
export function documentsAfter(afterDocId: string | undefined): { gte: Uint8Array } | { gt: Uint8Array } {
  return afterDocId === undefined ? { gte: ROOT } : { gt: documentRange(afterDocId).lt }
}

/** The document id a key belongs to, or undefined for a key outside the documents. */
export function docIdOfKey(key: Uint8Array): string | undefined {
  if (key.length < ROOT.length + 2) return undefined
  for (let i = 0; i < ROOT.length; i++) if (key[i] !== ROOT[i]) return undefined
  const length = ((key[ROOT.length] as number) << 8) | (key[ROOT.length + 1] as number)
  const start = ROOT.length + 2
  return key.length < start + length ? undefined : decoder.decode(key.subarray(start, start + length))
}
