/**
 * Handshake refusals that tell the client to wait (`rate_limited` with
 * `retryAfterMs`) are answered after that wait, up to `limits.ms`, with
 * `retryAfterMs` lowered to what is left of it (issue 15). A client that
 * honours the hint waits no longer than before. A client that reconnects the
 * moment it is refused (a struck-out abuser, a broken retry loop) used to
 * cost the server a full handshake each time, hundreds a second, which every
 * other user paid for in latency; now it waits as it was told to. At most
 * `limits.held` refusals are held at once (an attacker opening connections in
 * parallel cannot make the server hold unboundedly many): past that, a
 * refusal is answered at once.
 */
import type { ExtendedError } from 'socket.io'
import type { ServerLimits } from '../models/server-limits.js'
import { ErrorCode } from '../utils/errors.js'

export class RefusalTarpit {
  private held = 0

  constructor(private readonly limits: ServerLimits['refusalHold']) {}

  /** Calls `answer` with `err` now, or once the wait a rate-limit refusal names has passed (in part). */
  answer(err: ExtendedError, answer: (err: ExtendedError) => void): void {
    const data = err.data as { code?: unknown; retryAfterMs?: unknown } | undefined
    const wait = data?.code === ErrorCode.RATE_LIMITED && typeof data.retryAfterMs === 'number' ? data.retryAfterMs : 0
    const hold = Math.min(wait, this.limits.ms)
    if (hold <= 0 || this.held >= this.limits.held) return answer(err)
    this.held++
    const timer = setTimeout(() => {
      this.held--
      err.data = { ...data, retryAfterMs: wait - hold }
      answer(err)
    }, hold)
    // A held refusal does not keep the process alive; a server that stops waits for connections
    // to close only so long (CLOSE_WAIT_MS in app.ts), then closes the engine with these in it.
    timer.unref()
  }
}
