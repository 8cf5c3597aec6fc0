/**
 * Typed Yjs transaction origins: they tell observers where a change came from,
 * so that what was just loaded is never re-persisted and what a socket sent is
 * never echoed back to it.
 */
export type TransactionOrigin =
  | { source: 'storage' }
  | { source: 'yjs'; deviceId: string }
  | { source: 'changes'; deviceId: string }
  | { source: 'server' }
