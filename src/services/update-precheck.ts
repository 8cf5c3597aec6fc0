/**
 * A cheap structural walk of a Yjs V1 update, run before Y.decodeUpdate
 * (yjs issue 687: a few bytes that declare millions of structs). It reads the
 * update the way Yjs does — clients, per client the struct count, client id and
 * clock, then each struct's header and content, then the delete set — but
 * builds nothing, and refuses any declared count or length larger than the
 * bytes left could hold before looping over it. Every struct, delete range,
 * string and value takes at least one byte, so the walk is linear in the
 * update's size. It also refuses a length that reaches past the update's end:
 * lib0 reads such a string from whatever follows in the underlying buffer.
 */
import * as decoding from 'lib0/decoding'
import { ErrorCode, SyncError } from '../utils/errors.js'

/** Deeper nested values than this in one `Any` content are refused (Yjs itself would overflow its stack further on). */
const MAX_ANY_DEPTH = 1000

class Malformed extends Error {}

export function precheckUpdate(update: Uint8Array): void {
  try {
    walkUpdate(decoding.createDecoder(update))
  } catch (cause) {
    const message = cause instanceof Malformed ? cause.message : 'the update is cut short or holds an out-of-range number'
    throw new SyncError(ErrorCode.INVALID_UPDATE, `update is not a well-formed Yjs V1 update: ${message}`, { cause })
  }
}

const left = (d: decoding.Decoder): number => d.arr.length - d.pos

/** A declared count, refused when the bytes left cannot hold that many items of `minBytes` each. */
function readCount(d: decoding.Decoder, what: string, minBytes = 1): number {
  const n = decoding.readVarUint(d)
  if (n * minBytes > left(d)) throw new Malformed(`it declares ${n} ${what} but only ${left(d)} bytes follow`)
  return n
}

function skipBytes(d: decoding.Decoder, what: string): void {
  const len = decoding.readVarUint(d)
  if (len > left(d)) throw new Malformed(`a ${what} of ${len} bytes reaches past the update's end`)
  d.pos += len
}

function walkUpdate(d: decoding.Decoder): void {
  // Structs: per client, at least 3 bytes of header (struct count, client, clock).
  const clients = readCount(d, 'clients', 3)
  for (let c = 0; c < clients; c++) {
    // Every struct is at least 2 bytes (info and a length or content).
    const structs = readCount(d, 'structs', 2)
    decoding.readVarUint(d) // client
    decoding.readVarUint(d) // clock
    for (let s = 0; s < structs; s++) skipStruct(d)
  }
  // Delete set: per client its id and a count of (clock, len) ranges.
  const dsClients = readCount(d, 'delete-set clients', 2)
  for (let c = 0; c < dsClients; c++) {
    decoding.readVarUint(d) // client
    const ranges = readCount(d, 'deleted ranges', 2)
    for (let r = 0; r < ranges; r++) {
      decoding.readVarUint(d)
      decoding.readVarUint(d)
    }
  }
}

const BIT6 = 32
const BIT7 = 64
const BIT8 = 128

function skipStruct(d: decoding.Decoder): void {
  if (left(d) === 0) throw new Malformed('a struct is missing')
  const info = decoding.readUint8(d)
  if (info === 0 || info === 10) {
    decoding.readVarUint(d) // GC or Skip: a length
    return
  }
  const ref = info & 31
  if (ref === 0 || ref > 9) throw new Malformed(`unknown struct info ${info}`)
  if (info & BIT8) skipId(d) // origin
  if (info & BIT7) skipId(d) // right origin
  if ((info & (BIT7 | BIT8)) === 0) {
    const parentInfo = decoding.readVarUint(d)
    if (parentInfo === 1) skipBytes(d, 'parent name')
    else if (parentInfo === 0) skipId(d)
    else throw new Malformed(`unknown parent info ${parentInfo}`)
    if (info & BIT6) skipBytes(d, 'parent key')
  }
  skipContent(d, ref)
}

function skipId(d: decoding.Decoder): void {
  decoding.readVarUint(d)
  decoding.readVarUint(d)
}

function skipContent(d: decoding.Decoder, ref: number): void {
  switch (ref) {
    case 1: // deleted: a length
      decoding.readVarUint(d)
      return
    case 2: {
      // JSON: a count of strings
      const n = readCount(d, 'JSON values')
      for (let i = 0; i < n; i++) skipBytes(d, 'JSON string')
      return
    }
    case 3: // binary
      skipBytes(d, 'binary')
      return
    case 4: // string
      skipBytes(d, 'string')
      return
    case 5: // embed: a JSON string
      skipBytes(d, 'embed')
      return
    case 6: // format: key and JSON string
      skipBytes(d, 'format key')
      skipBytes(d, 'format value')
      return
    case 7: {
      // type: its type ref, and a name for XmlElement (3) and XmlHook (5)
      const typeRef = decoding.readVarUint(d)
      if (typeRef > 6) throw new Malformed(`unknown type ref ${typeRef}`)
      if (typeRef === 3 || typeRef === 5) skipBytes(d, 'type name')
      return
    }
    case 8: {
      // any: a count of values
      const n = readCount(d, 'values')
      for (let i = 0; i < n; i++) skipAny(d, 0)
      return
    }
    default: // 9, a subdocument: guid and options
      skipBytes(d, 'guid')
      skipAny(d, 0)
  }
}

/** One lib0 `any` value (lib0/encoding writeAny). */
function skipAny(d: decoding.Decoder, depth: number): void {
  if (depth > MAX_ANY_DEPTH) throw new Malformed(`a value is nested deeper than ${MAX_ANY_DEPTH}`)
  if (left(d) === 0) throw new Malformed('a value is missing')
  const type = decoding.readUint8(d)
  switch (type) {
    case 127: // undefined
    case 126: // null
    case 121: // false
    case 120: // true
      return
    case 125:
      decoding.readVarInt(d)
      return
    case 124:
      fixed(d, 4)
      return
    case 123:
    case 122:
      fixed(d, 8)
      return
    case 119:
      skipBytes(d, 'string')
      return
    case 118: {
      const n = readCount(d, 'object entries', 2)
      for (let i = 0; i < n; i++) {
        skipBytes(d, 'key')
        skipAny(d, depth + 1)
      }
      return
    }
    case 117: {
      const n = readCount(d, 'array values')
      for (let i = 0; i < n; i++) skipAny(d, depth + 1)
      return
    }
    case 116:
      skipBytes(d, 'binary')
      return
    default:
      throw new Malformed(`unknown value type ${type}`)
  }
}

function fixed(d: decoding.Decoder, n: number): void {
  if (n > left(d)) throw new Malformed('a number is cut short')
  d.pos += n
}
