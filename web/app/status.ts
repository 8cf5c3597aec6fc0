/**
 * The status badge: the SDK's connection status and its count of local edits
 * the server has not acknowledged yet, e.g. "synced", "offline · 3 pending".
 * The same two values are on the badge as `data-status` and `data-pending`.
 */
import type { SyncClient, SyncStatus } from '@superclip/sync-client'

export function badgeText(status: SyncStatus, pending: number): string {
  return pending > 0 ? `${status} · ${pending} pending` : status
}

/** Keeps `badge` showing the client's status; returns the function that stops it. */
export function watchStatus(client: SyncClient, badge: HTMLElement): () => void {
  const show = (): void => {
    const { status, pendingChanges } = client
    badge.textContent = badgeText(status, pendingChanges)
    badge.dataset.status = status
    badge.dataset.pending = String(pendingChanges)
    badge.title = pendingChanges > 0 ? `${pendingChanges} change(s) made here are not on the server yet` : 'Everything made here is on the server'
  }
  client.on('status', show)
  client.on('pending', show)
  show()
  return () => {
    client.off('status', show)
    client.off('pending', show)
  }
}
