/**
 * What the seed's handlers reach through the Socket.IO server they are given
 * (`handleSyncRequest(io, socket, request)`, `getSyncStatus(socket, deviceId)`:
 * a socket leads to its server by `socket.nsp.server`). `createSocketServer`
 * attaches one runtime to each server it makes; a server has at most one, so
 * two servers in one process (tests) never share services or limits.
 */
import type { DocumentLease } from '../services/document-registry.js'
import type { Services } from '../services/index.js'
import type { SyncDocument } from '../services/sync-document.js'
import { ErrorCode, SyncError } from '../utils/errors.js'
import type { EventRouter } from './event-router.js'
import { replyError } from './reply.js'
import type { SyncServer, SyncSocket } from './types.js'

export class SyncRuntime {
  /** Each socket's reference on its user's document, taken at its first use and dropped at its disconnect. */
  private readonly leases = new WeakMap<SyncSocket, DocumentLease>()
  /** Each socket's document once loaded (`loaded`). */
  private readonly documents = new WeakMap<SyncSocket, SyncDocument>()

  constructor(
    readonly services: Services,
    readonly router: EventRouter,
  ) {}

  /** Makes `lease` (taken at the handshake, cluster mode) the connected socket's reference on its document. */
  adopt(socket: SyncSocket, lease: DocumentLease): void {
    if (this.leases.has(socket) || socket.disconnected) {
      lease.release()
      return
    }
    this.hold(socket, lease)
  }

  private hold(socket: SyncSocket, lease: DocumentLease): void {
    this.leases.set(socket, lease)
    socket.once('disconnect', () => lease.release())
    lease.document.then(
      (doc) => this.documents.set(socket, doc),
      () => undefined, // reported by `document`
    )
  }

  /**
   * The socket's document if it is loaded already, without waiting: handlers
   * write `runtime.loaded(socket) ?? (await runtime.document(socket))`, so
   * that an event on a loaded document runs to its write in one go, and the
   * fair scheduler measures its whole cost (fair-scheduler.ts).
   */
  loaded(socket: SyncSocket): SyncDocument | undefined {
    return this.documents.get(socket)
  }

  /**
   * The socket's user's document, loaded once for all of the user's sockets.
   * If it cannot be loaded the socket is told (`sync:error` UNAVAILABLE, event
   * `connect`) and disconnected: it connects again and the load is retried.
   */
  document(socket: SyncSocket): Promise<SyncDocument> {
    const held = this.leases.get(socket)
    if (held) return held.document
    if (socket.disconnected) return Promise.reject(new SyncError(ErrorCode.UNAVAILABLE, 'the socket is disconnected'))
    const { userId } = socket.data
    const lease = this.services.sync.openDocument(userId)
    this.hold(socket, lease)
    lease.document.catch((err: unknown) => {
      this.router.log.error({ err, userId }, 'document load failed; disconnecting the socket')
      replyError(socket, 'connect', undefined, undefined, new SyncError(ErrorCode.UNAVAILABLE, 'document unavailable'), this.router.log)
      socket.disconnect(true)
    })
    return lease.document
  }
}

const runtimes = new WeakMap<SyncServer, SyncRuntime>()

export function attachRuntime(io: SyncServer, runtime: SyncRuntime): void {
  runtimes.set(io, runtime)
}

/** The server a socket belongs to (Socket.IO types its `SocketData` as `any` there). */
export const serverOf = (socket: SyncSocket): SyncServer => socket.nsp.server as SyncServer

export function runtimeOf(io: SyncServer): SyncRuntime {
  const runtime = runtimes.get(io)
  if (!runtime) throw new Error('this Socket.IO server was not made by createSocketServer (websockets/server.ts)')
  return runtime
}
