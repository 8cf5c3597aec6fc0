/**
 * Devices and connections per user (plan limits, `models/plans.ts`), checked
 * at the handshake, after authentication. A socket over either limit is
 * refused: the client sees `connect_error` with `message` `quota_exceeded` and
 * `data` `{ code: 'QUOTA_EXCEEDED', message }`.
 *
 * Devices are the distinct `deviceId`s of the user's sockets connected at
 * once (another socket of an already connected device is not a new device);
 * connections are those sockets. A socket counts from the moment it passes
 * this check (so two handshakes racing cannot both take the last place) until
 * it disconnects or its connection closes.
 */
import type { ExtendedError } from 'socket.io'
import type { PlanTable } from '../../models/plans.js'
import { ErrorCode } from '../../utils/errors.js'
import type { Logger } from '../../utils/logger.js'
import { handshakeRefusal } from '../reply.js'
import type { SyncSocket } from '../types.js'

export class ConnectionTracker {
  /** Per user: socket id → device id. */
  private readonly users = new Map<string, Map<string, string>>()

  /** The user's sockets and distinct devices counted now. */
  counts(userId: string): { connections: number; devices: number } {
    const sockets = this.users.get(userId)
    return { connections: sockets?.size ?? 0, devices: new Set(sockets?.values()).size }
  }

  hasDevice(userId: string, deviceId: string): boolean {
    for (const d of this.users.get(userId)?.values() ?? []) if (d === deviceId) return true
    return false
  }

  add(userId: string, socketId: string, deviceId: string): void {
    let sockets = this.users.get(userId)
    if (!sockets) this.users.set(userId, (sockets = new Map<string, string>()))
    sockets.set(socketId, deviceId)
  }

  remove(userId: string, socketId: string): void {
    const sockets = this.users.get(userId)
    if (!sockets) return
    sockets.delete(socketId)
    if (sockets.size === 0) this.users.delete(userId)
  }
}

/** Runs after the auth middleware, so `socket.data` holds the verified user, device and plan. */
export function createPlanMiddleware(plans: PlanTable, tracker: ConnectionTracker, log: Logger) {
  return (socket: SyncSocket, next: (err?: ExtendedError) => void): void => {
    const { userId, deviceId, plan } = socket.data
    const limits = plans[plan]
    const { connections, devices } = tracker.counts(userId)
    let refusal: string | undefined
    if (connections >= limits.connectionsPerUser) {
      refusal = `the ${plan} plan allows ${limits.connectionsPerUser} connections per user at once`
    } else if (devices >= limits.devicesPerUser && !tracker.hasDevice(userId, deviceId)) {
      refusal = `the ${plan} plan allows ${limits.devicesPerUser} devices per user connected at once`
    }
    if (refusal !== undefined) {
      log.info({ userId, deviceId, plan, connections, devices }, 'connection refused: plan limit')
      next(handshakeRefusal('quota_exceeded', ErrorCode.QUOTA_EXCEEDED, refusal))
      return
    }
    tracker.add(userId, socket.id, deviceId)
    const release = (): void => tracker.remove(userId, socket.id)
    // A handshake that never completes (the client went away) releases its place when its connection closes.
    socket.conn.once('close', release)
    socket.once('disconnect', release)
    next()
  }
}
