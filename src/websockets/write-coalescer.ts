/**
 * Holds a connection's outgoing WebSocket frames until the end of the
 * event-loop turn, so that they leave in one write (issue 5). Every
 * acknowledgement and relay is its own frame, and the binary ones two; ws
 * writes each frame with its own syscall. A group commit settles many updates
 * in one turn: a device that had 30 updates in it got 30 acks, 30 syscalls.
 * Corked until the turn's check phase, they go out together. Called for every
 * packet engine.io creates for a connection (`packetCreate`, server.ts).
 *
 * The TCP socket is the one of the request that opened the connection
 * (`socket.request.socket`, public API): for a WebSocket-first connection it
 * is the WebSocket's own. A connection that began with long-polling and was
 * upgraded keeps its first request, whose socket is another one: corking
 * that only defers its writes to the same point of the turn.
 */
import type { Socket as TcpSocket } from 'node:net'
import type { SyncSocket } from './types.js'

/** The sockets corked in this turn: a new Set each turn, not cleared (see read-pacer.ts: `clear()` makes old-generation garbage). */
let corked = new Set<TcpSocket>()

/** Holds `socket`'s writes until the end of this turn. */
export function holdWrites(socket: SyncSocket): void {
  const tcp = socket.request.socket as TcpSocket | undefined
  if (!tcp || tcp.destroyed || corked.has(tcp)) return
  tcp.cork()
  corked.add(tcp)
  if (corked.size === 1) setImmediate(release)
}

function release(): void {
  const held = corked
  corked = new Set()
  for (const tcp of held) tcp.uncork()
}
