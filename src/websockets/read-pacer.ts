/**
 * Caps what one connection is read per turn of the event loop (issue 15).
 * libuv reads a readable socket up to 32 times per poll, and ws parses each
 * chunk and emits every message in it at once: a client that writes 1,000
 * updates in one go had all of them decoded, admitted or refused, and
 * replied to before any other connection's read, while the fair scheduler
 * only orders what runs after admission. Once a connection has delivered
 * `perTurn` packets in a turn, its WebSocket is paused (ws's public
 * `pause()`: no more reads from the TCP socket) and resumed in the turn's
 * check phase, so the rest waits in the kernel's buffer, and TCP flow
 * control slows a client that keeps writing. The chunk being parsed is
 * finished first (ws parses a read of up to 64 KB whole), so the cap is
 * about one read per turn rather than exactly `perTurn` packets.
 * Long-polling connections are not paced (one HTTP body per request).
 */
import type { SyncSocket } from './types.js'

/** What the pacer needs of ws's WebSocket (engine.io's WebSocket transport keeps it as `socket`). */
interface Pausable {
  pause(): void
  resume(): void
  readonly isPaused: boolean
}

/**
 * Packets each connection delivered in this turn, and the connections paused
 * in it: new ones each turn, not cleared. V8 gives a Map or Set that has
 * lived long its new table in the old generation: `clear()` once a turn made
 * garbage there that only a major collection frees, about 180 KB/s on the
 * flood run.
 */
let counts = new Map<SyncSocket, number>()
let paused = new Set<Pausable>()

/** Counts one packet read from `socket`; past `perTurn` in this turn, pauses its reads until the turn's end. */
export function paceRead(socket: SyncSocket, perTurn: number): void {
  const count = (counts.get(socket) ?? 0) + 1
  counts.set(socket, count)
  if (counts.size === 1 && count === 1) setImmediate(endTurn)
  if (count !== perTurn + 1) return
  const ws = webSocketOf(socket)
  if (!ws || ws.isPaused) return
  ws.pause()
  paused.add(ws)
}

function endTurn(): void {
  const resumed = paused
  counts = new Map()
  paused = new Set()
  for (const ws of resumed) ws.resume()
}

function webSocketOf(socket: SyncSocket): Pausable | undefined {
  const transport = socket.conn.transport as { name?: string; socket?: Partial<Pausable> }
  const ws = transport.name === 'websocket' ? transport.socket : undefined
  return ws && typeof ws.pause === 'function' && typeof ws.resume === 'function' ? (ws as Pausable) : undefined
}
