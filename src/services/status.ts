/**
 * Per-device sync state and `SyncStatus` (protocol §7). A device's last
 * completed sync is persisted with the next group commit; `pendingChanges`
 * counts the entities changed since then, or none for a socket that is live
 * (every change is pushed to it as it commits).
 */
import type { DeviceSyncState } from '../models/records.js'
import type { DocumentRepository } from '../repositories/document.repository.js'
import type { SyncStatus } from '../types/sync.js'
import type { SyncDocument } from './sync-document.js'
import type { UpdateCommitter } from './update-committer.js'

export interface SocketSyncState {
  live: boolean
  inProgress: boolean
  lastError: string | null
}

/** Records a completed sync of `deviceId`; persisted with the next commit. */
export function recordCompletedSync(
  sync: SyncDocument,
  committer: UpdateCommitter,
  state: DeviceSyncState,
): Promise<void> {
  sync.devices.set(state.deviceId, state)
  return committer.commit(sync, { devices: [state] })
}

export async function syncStatus(
  sync: SyncDocument,
  repo: DocumentRepository,
  userId: string,
  deviceId: string,
  socket: SocketSyncState,
): Promise<SyncStatus & { conflicts: string[] }> {
  let device = sync.devices.get(deviceId)
  if (!device) {
    device = await repo.readDevice(sync.id, deviceId)
    if (device) sync.devices.set(deviceId, device)
  }
  // Live counts are kept with the index; only a socket that is not live needs the index walked.
  const entityCounts = sync.entityCounts()
  let pendingChanges = 0
  if (!socket.live) {
    const since = device?.lastSyncTimestamp ?? -1
    for (const r of sync.entities.values()) if (r.timestamp > since) pendingChanges++
  }
  return {
    userId,
    deviceId,
    // 0: the device has not completed a sync yet (the seed's field is a number).
    lastSyncTimestamp: device?.lastSyncTimestamp ?? 0,
    pendingChanges,
    inProgress: socket.inProgress,
    ...(socket.lastError === null ? {} : { lastError: socket.lastError }),
    entityCounts,
    conflicts: [...sync.conflicts.keys()],
  }
}
