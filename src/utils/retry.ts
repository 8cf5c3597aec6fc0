/**
 * Retry hints with jitter (issue 4, item 7). A `retryAfterMs` sent to many
 * clients at once (a restart, a shared limit) is spread over
 * [ms, ms + spread) so that they do not all come back in the same instant.
 */
export function jittered(ms: number, spread = Math.max(ms, 250)): number {
  return Math.ceil(ms + Math.random() * spread)
}

/** How long a client is told to wait before it reconnects to a restarting server (before jitter). */
export const RESTART_RETRY_MS = 2000
