/**
 * Binary events as single WebSocket messages for the devices that ask for
 * them (`auth.wire: 'single-frame'`; the codec is the SDK's, in
 * client/src/wire.ts, so both ends share one definition). The server reads
 * both forms from every socket; it writes the default form through Socket.IO
 * and the single form here, straight to the socket's engine.io connection,
 * which is what Socket.IO itself does with an encoded packet.
 */
import { Encoder } from '@superclip/sync-client/wire'
import type { ServerToClientEvents } from '../types/events.js'
import type { SyncSocket } from './types.js'

export { dualParser } from '@superclip/sync-client/wire'

/** Socket.IO's packet type for an event (the encoder makes it a binary event when its data holds binary). */
const EVENT = 2

const encoder = new Encoder()

/** Whether the socket's device asked for binary packets as single messages (read at the handshake). */
export function wantsSingleFrame(socket: SyncSocket): boolean {
  return socket.data.singleFrame
}

/** An event of the default namespace encoded once, to write to any number of sockets with `writeEncoded`. */
export function encodeEvent(event: string, ...args: unknown[]): (string | Uint8Array)[] {
  return encoder.encode({ type: EVENT, nsp: '/', data: [event, ...args] })
}

/** Emits an event with binary: in one message to a socket that asked for it, through Socket.IO to the others. */
export function emitBinary<E extends keyof ServerToClientEvents>(socket: SyncSocket, event: E, ...args: Parameters<ServerToClientEvents[E]>): void {
  if (wantsSingleFrame(socket)) writeEncoded(socket, encodeEvent(event, ...args))
  else socket.emit(event, ...args)
}

/** Writes an event encoded by `encodeEvent`, in order with what Socket.IO writes to the socket. */
export function writeEncoded(socket: SyncSocket, encoded: readonly (string | Uint8Array)[]): void {
  for (const message of encoded) socket.conn.write(message)
}
