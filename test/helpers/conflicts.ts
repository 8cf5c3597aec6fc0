/**
 * Conflict helpers for any socket, Yjs or JSON (protocol §§6 and 7):
 * collect `sync:conflict` events, ask for `sync:status`, resolve a conflict,
 * and read which Yjs entry a map field currently holds.
 */
import type { Socket } from 'socket.io-client'
import type * as Y from 'yjs'
import type { StatusPayload } from '../../src/types/events.js'
import type { ConflictVersion, SyncConflict } from '../../src/types/sync.js'
import type { Reply } from './json-device.js'

export interface ResolutionPayload {
  conflictId: string
  winningVersion: 'server' | 'client' | 'merged'
  mergedData?: Record<string, unknown>
}

/** The conflict's two sides, typed (the seed types them `any`). */
export function sidesOf(c: SyncConflict): { server: ConflictVersion; client: ConflictVersion } {
  return { server: c.serverVersion as ConflictVersion, client: c.clientVersion as ConflictVersion }
}

/** Every `sync:conflict` the socket receives from now on, in order. */
export function conflictLog(socket: Socket): SyncConflict[] {
  const log: SyncConflict[] = []
  socket.on('sync:conflict', (c: SyncConflict) => log.push(c))
  return log
}

/**
 * Sends `sync:status` and returns the emitted status. Everything the server
 * emitted to this socket before it handled the request has arrived by then.
 */
export async function requestStatus(socket: Socket, deviceId: string, ms = 5000): Promise<StatusPayload> {
  let timer: NodeJS.Timeout | undefined
  const status = new Promise<StatusPayload>((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no sync:status for ${deviceId} within ${ms} ms`)), ms)
    socket.once('sync:status', (s: StatusPayload) => resolve(s))
  })
  try {
    const reply = (await socket.timeout(ms).emitWithAck('sync:status', { deviceId })) as Reply
    if (!reply.ok) throw new Error(`sync:status refused: ${JSON.stringify(reply)}`)
    return await status
  } finally {
    clearTimeout(timer)
  }
}

export function resolveConflict(socket: Socket, payload: ResolutionPayload, ms = 5000): Promise<Reply> {
  return socket.timeout(ms).emitWithAck('sync:conflict', payload) as Promise<Reply>
}

/**
 * The id (`client:clock`) of the Yjs entry a map field holds now, or undefined
 * for none: the entry a write made on this document would overwrite.
 */
export function entryOf(map: Y.Map<unknown>, field: string): string | undefined {
  const item = (map as unknown as { _map: Map<string, Y.Item> })._map.get(field)
  return item && !item.deleted ? `${item.id.client}:${item.id.clock + item.length - 1}` : undefined
}

/** mulberry32: a tiny seeded PRNG, so a failing random run can be replayed. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
