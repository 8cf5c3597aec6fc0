import type { Server, Socket } from 'socket.io'
import type { ClientToServerEvents, ServerToClientEvents, SocketData } from '../types/events.js'

/** An admin HTTP request sent through the cluster to the node owning its user (cluster-link.ts). */
export interface ForwardedRequest {
  toNodeId: string
  method: string
  url: string
  authorization: string | undefined
  contentType: string | undefined
  /** The request body, base64 (none for GET and DELETE). */
  body: string | undefined
}

/** The owner's reply to a forwarded request, replayed as is by the node that got it. */
export interface ForwardedReply {
  statusCode: number
  contentType: string | undefined
  /** The reply body, base64. */
  body: string
}

/** Events between the nodes of a cluster (Socket.IO Redis adapter, server-side events). */
export interface InterServerEvents {
  'admin:forward': (request: ForwardedRequest, ack: (reply: ForwardedReply | null) => void) => void
}

export type SyncServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>
export type SyncSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>

/** Every socket of user U is in `user:U` (protocol §1). */
export const userRoom = (userId: string): string => `user:${userId}`
/** Yjs sockets of user U that completed a sync and are not paused: they get live `sync:update`. */
export const liveYjsRoom = (userId: string): string => `yjs:${userId}`
/** JSON sockets of user U that completed a change-log sync and are not paused. */
export const liveChangesRoom = (userId: string): string => `changes:${userId}`
