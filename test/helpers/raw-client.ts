/**
 * Bare socket.io-client sockets that speak the protocol by hand: for tests of
 * refusals (plans, rate limits), where a device helper that syncs and retries
 * would get in the way.
 */
import { io, type Socket } from 'socket.io-client'
import { afterEach } from 'vitest'
import * as Y from 'yjs'

export type { Reply } from '../../src/types/events.js'
import type { Reply } from '../../src/types/events.js'

export interface Client {
  socket: Socket
  deviceId: string
  /** Every `sync:error` the socket got. */
  errors: { code: string; event: string; message: string; retryAfterMs?: number }[]
}

/**
 * The list `connect` and `attempt` put their sockets in; every socket in it
 * is closed after each test (call it in the describe, after `useServer()`,
 * so that the sockets close before the server stops).
 */
export function openedSockets(): Socket[] {
  const opened: Socket[] = []
  afterEach(() => {
    for (const s of opened.splice(0)) s.disconnect()
  })
  return opened
}

/** Connects a bare socket; resolves once connected, or rejects with the `connect_error`. */
export async function connect(url: string, token: string, deviceId: string, opened: Socket[]): Promise<Client> {
  const socket = io(url, { auth: { token, deviceId }, transports: ['websocket'], reconnection: false, forceNew: true })
  opened.push(socket)
  const errors: Client['errors'] = []
  socket.on('sync:error', (e: Client['errors'][number]) => errors.push(e))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve())
    socket.once('connect_error', reject)
  })
  return { socket, deviceId, errors }
}

/** What a connection attempt ends in: `connected`, or the refusal's message and data. */
export async function attempt(url: string, token: string, deviceId: string, opened: Socket[]): Promise<unknown> {
  try {
    await connect(url, token, deviceId, opened)
    return 'connected'
  } catch (err) {
    const e = err as Error & { data?: unknown }
    return { message: e.message, data: e.data }
  }
}

/** A Yjs update from a fresh client creating clips `ids` (no dependencies on anything). */
export function clipsUpdate(ids: string[], content = 'x', collection = 'clips'): Uint8Array {
  const doc = new Y.Doc()
  doc.transact(() => {
    for (const id of ids) {
      const clip = new Y.Map<unknown>()
      clip.set(collection === 'clips' ? 'content' : 'name', content)
      doc.getMap(collection).set(id, clip)
    }
  })
  return Y.encodeStateAsUpdate(doc)
}

export async function sendUpdate(client: Client, update: Uint8Array): Promise<Reply> {
  return (await client.socket.emitWithAck('sync:update', { update })) as Reply
}
