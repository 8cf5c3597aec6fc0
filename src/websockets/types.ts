import type { Server, Socket } from 'socket.io'
import type { ClientToServerEvents, ServerToClientEvents, SocketData } from '../types/events.js'

// eslint-disable-next-line @typescript-eslint/no-empty-object-type
type InterServerEvents = {}

export type SyncServer = Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>
export type SyncSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>

/** Every socket of user U is in `user:U` (protocol §1). */
export const userRoom = (userId: string): string => `user:${userId}`
/** Yjs sockets of user U that completed a sync and are not paused: they get live `sync:update`. */
export const liveYjsRoom = (userId: string): string => `yjs:${userId}`
/** JSON sockets of user U that completed a change-log sync and are not paused. */
export const liveChangesRoom = (userId: string): string => `changes:${userId}`
