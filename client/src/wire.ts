/**
 * Socket.IO's packet codec with one change: a packet that carries binary (a
 * Yjs update, a state vector) travels as one WebSocket message instead of a
 * JSON header message followed by one message per attachment.
 *
 * Socket.IO's default parser sends `sync:update { update }` as two messages,
 * `451-["sync:update",{"update":{"_placeholder":true,"num":0}}]` and then the
 * update's bytes. Here the same header and attachments are packed into one
 * binary message:
 *
 *     byte 1 (the format) · var-string header · var-bytes attachment, one per placeholder
 *
 * (lib0's variable-length integers and strings, as in Yjs's own messages).
 * Unpacking hands the header and the attachments to Socket.IO's own decoder,
 * so placeholders, attachment counts and JSON are checked exactly as for the
 * default parser. Packets without binary are the default parser's text.
 *
 * The decoder reads both forms on every connection, so a peer that sends
 * with the default parser is understood too. A device asks the server for
 * single messages with `auth.wire: 'single-frame'` (`WIRE_SINGLE_FRAME`);
 * without it the server sends it only the default form.
 */
import { Emitter } from '@socket.io/component-emitter'
import * as decoding from 'lib0/decoding'
import { Decoder as DefaultDecoder, Encoder as DefaultEncoder, type Packet } from 'socket.io-parser'

/** The handshake's `auth.wire` value that asks the server for binary packets as single messages. */
export const WIRE_SINGLE_FRAME = 'single-frame'

/** The first byte of a single-message packet: the layout above. */
const FORMAT = 1
/** Attachments of one packet at most: socket.io-parser's default `maxAttachments`. */
const MAX_ATTACHMENTS = 10

/** Socket.IO's packet types whose text header announces attachments (`5` binary event, `6` binary ack). */
const announcesAttachments = (header: string): boolean => header[0] === '5' || header[0] === '6'

/** The bytes a binary value of a packet stands for: a view's own range, never its whole buffer. */
function bytesOf(value: unknown): Uint8Array {
  if (value instanceof Uint8Array) return value
  if (value instanceof ArrayBuffer) return new Uint8Array(value)
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  throw new Error('a packet attachment must be an ArrayBuffer or a typed array view (Blobs are not supported)')
}

/** Bytes of `n` as a lib0 variable-length unsigned integer (7 bits a byte, low bits first). */
function varUintLength(n: number): number {
  let length = 1
  for (; n >= 0x80; length++) n = Math.floor(n / 0x80)
  return length
}

/** Writes `n` as lib0's variable-length unsigned integer at `pos`; returns the position after it. */
function writeVarUint(out: Uint8Array, pos: number, n: number): number {
  for (; n >= 0x80; n = Math.floor(n / 0x80)) out[pos++] = 0x80 | n % 0x80
  out[pos++] = n
  return pos
}

const utf8 = new TextEncoder()

/**
 * One message for Socket.IO's encoded parts `[header, ...attachments]`:
 * lib0's layout (`writeUint8`, `writeVarString`, `writeVarUint8Array`),
 * written into one buffer sized up front. lib0's growing encoder allocated
 * and joined several chunks for a one-clip update: 3.3 µs a message against
 * 1.0 µs here.
 */
export function packParts(parts: readonly unknown[]): Uint8Array {
  const [header, ...rest] = parts
  if (typeof header !== 'string') throw new Error('a packet header must be text')
  const attachments = rest.map(bytesOf)
  // UTF-8 takes at most 3 bytes per UTF-16 unit; the header goes in after the longest length prefix it could need.
  const headerAt = 1 + varUintLength(header.length * 3)
  let size = headerAt + header.length * 3
  for (const attachment of attachments) size += varUintLength(attachment.byteLength) + attachment.byteLength
  const out = new Uint8Array(size)
  out[0] = FORMAT
  const { written } = utf8.encodeInto(header, out.subarray(headerAt))
  let pos = writeVarUint(out, 1, written)
  if (pos !== headerAt) out.copyWithin(pos, headerAt, headerAt + written)
  pos += written
  for (const attachment of attachments) {
    pos = writeVarUint(out, pos, attachment.byteLength)
    out.set(attachment, pos)
    pos += attachment.byteLength
  }
  return out.subarray(0, pos)
}

/** Encodes a packet as the default parser does, with its binary form packed into one message. */
export class Encoder {
  private readonly parts = new DefaultEncoder()

  encode(packet: Packet): (string | Uint8Array)[] {
    const parts = this.parts.encode(packet) as (string | Uint8Array)[]
    return parts.length === 1 ? parts : [packParts(parts)]
  }
}

interface DecoderEvents {
  decoded: (packet: Packet) => void
}

/** Decodes the default parser's messages and single-message packets alike. */
export class Decoder extends Emitter<Record<string, never>, Record<string, never>, DecoderEvents> {
  private readonly parts = new DefaultDecoder()
  /** A default-form header came and its attachments are still arriving as messages of their own. */
  private reconstructing = false

  constructor() {
    super()
    this.parts.on('decoded', (packet) => {
      this.reconstructing = false
      this.emitReserved('decoded', packet)
    })
  }

  add(chunk: unknown): void {
    if (typeof chunk === 'string') {
      this.parts.add(chunk)
      this.reconstructing = announcesAttachments(chunk)
    } else if (this.reconstructing) {
      this.parts.add(chunk)
    } else {
      this.unpack(bytesOf(chunk))
    }
  }

  private unpack(message: Uint8Array): void {
    const reader = decoding.createDecoder(message)
    if (decoding.readUint8(reader) !== FORMAT) throw new Error('unknown binary packet format')
    const header = decoding.readVarString(reader)
    // The count the header announces, bounded as Socket.IO's decoder bounds it, before anything is read:
    // a message of millions of empty attachments never makes millions of views.
    const count = announcesAttachments(header) ? Number(header.slice(1, header.indexOf('-'))) : Number.NaN
    if (!Number.isInteger(count) || count < 1 || count > MAX_ATTACHMENTS) throw new Error(`a binary packet header must announce 1 to ${MAX_ATTACHMENTS} attachments`)
    const attachments: Uint8Array[] = []
    for (let i = 0; i < count; i++) attachments.push(decoding.readVarUint8Array(reader))
    // Checked before anything is decoded: a packet is delivered whole or not at all.
    if (decoding.hasContent(reader)) throw new Error('a binary packet whose attachments do not match its header')
    this.parts.add(header)
    this.reconstructing = true
    for (const attachment of attachments) this.parts.add(attachment)
  }

  destroy(): void {
    this.reconstructing = false
    this.parts.destroy()
  }
}

/** The parser to give socket.io-client (`parser` option): it sends binary packets as single messages. */
export const singleFrameParser = { Encoder, Decoder }

/**
 * The parser for a server that serves both kinds of devices: it reads both
 * forms, and writes the default one (a Socket.IO server has one encoder for
 * all its sockets); it sends single messages to the devices that asked for
 * them itself, with `Encoder`.
 */
export const dualParser = { Encoder: DefaultEncoder, Decoder }
