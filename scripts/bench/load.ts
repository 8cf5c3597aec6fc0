/**
 * Load from a device: a window of unacknowledged sends kept full until a count
 * or a deadline, and the counters a measured phase keeps of its sends, their
 * acks and their relays to the user's other devices.
 */

/** Unacknowledged sends are waited for this long after a phase's deadline, then counted as unanswered. */
export const ACK_GRACE_MS = 20_000

/** What a phase counts of its sends, acks and relays. */
export class SendTally {
  sent = 0
  acked = 0
  failed = 0
  firstError: string | undefined
  /** performance.now() of the last ack (read only once something was acked). */
  lastAckAt = Number.NaN
  readonly ackMs: number[] = []
  readonly deliveryMs: number[] = []
  /** Relays of nothing sent in this phase. */
  unmatchedRelays = 0
  /** Send time (performance.now()) by the key the send's relays carry. */
  readonly sentAt = new Map<string, number>()

  /** The counts a result reports: sends, acks, refusals, the rest unanswered, and the first refusal. */
  summary(): { sent: number; acked: number; failed: number; unanswered: number; firstError: string | null } {
    const { sent, acked, failed } = this
    return { sent, acked, failed, unanswered: sent - acked - failed, firstError: this.firstError ?? null }
  }

  /** The answer to a send made at `at`: an ack, or a refusal with `error`. */
  answered(at: number, ok: boolean, error: string | undefined): void {
    const now = performance.now()
    if (ok) {
      this.acked++
      this.ackMs.push(now - at)
      this.lastAckAt = now
    } else {
      this.failed++
      this.firstError ??= error
    }
  }

  /** Relays matched to a send of this phase (a late relay of an earlier phase is not one). */
  get delivered(): number {
    return this.deliveryMs.length
  }

  /** A relay of the send that `key` identifies, arrived at `at`. */
  relayed(key: string, at: number): void {
    const sentAt = this.sentAt.get(key)
    if (sentAt === undefined) this.unmatchedRelays++
    else this.deliveryMs.push(at - sentAt)
  }
}

/**
 * Sends up to `count` times from one device, keeping at most `window` sends
 * unanswered, until `deadline`; resolves when every send is answered (or
 * `deadline + ACK_GRACE_MS` passes: the rest counts as unanswered). `send`
 * makes one send and calls `answered` once its answer is in.
 */
export function pump(count: number, window: number, deadline: number, send: (answered: () => void) => void): Promise<void> {
  return new Promise((resolve) => {
    let sent = 0
    let inflight = 0
    let finished = false
    const finish = () => {
      if (finished) return
      finished = true
      clearTimeout(guard)
      resolve()
    }
    const guard = setTimeout(finish, Math.max(0, deadline - performance.now()) + ACK_GRACE_MS)
    const next = () => {
      while (inflight < window && sent < count && performance.now() < deadline) {
        sent++
        inflight++
        send(() => {
          inflight--
          if (!finished) next()
        })
      }
      if (inflight === 0) finish()
    }
    next()
  })
}

/**
 * A paced device: one send every `periodMs` from `start` until `deadline`,
 * with at most one send unanswered. A send whose tick comes while the
 * previous one is still unanswered goes out as soon as the answer is in (the
 * missed ticks are skipped, not made up), counts as late, and takes the
 * device's next tick: its later ticks stay on its own grid. (They used to
 * restart from the answer: a stall's answers arrive together, so every device
 * late in it sent in the same millisecond from then on, 40 of 100 at once each
 * period, and the phase's latency was the bench's own bursts.) So the send
 * after a late one has one to two periods before it is late in turn. `send` makes one
 * send and calls `answered` once its answer is in. Resolves with the late
 * count when the last send is answered (or `deadline + ACK_GRACE_MS` passes).
 */
export function paced(periodMs: number, start: number, deadline: number, send: (answered: () => void) => void): Promise<{ late: number }> {
  return new Promise((resolve) => {
    let late = 0
    let due = start
    let timer: NodeJS.Timeout | undefined
    let finished = false
    const finish = () => {
      if (finished) return
      finished = true
      clearTimeout(guard)
      clearTimeout(timer)
      resolve({ late })
    }
    const guard = setTimeout(finish, Math.max(0, deadline - performance.now()) + ACK_GRACE_MS)
    const tick = () => {
      if (finished) return
      if (performance.now() >= deadline) return finish()
      send(() => {
        if (finished) return
        const now = performance.now()
        // Answered after the deadline: no next send, so nothing is late.
        if (now >= deadline) return finish()
        due += periodMs
        if (due < now) {
          late++
          due += Math.ceil((now - due) / periodMs) * periodMs
          timer = setTimeout(tick, 0)
        } else timer = setTimeout(tick, due - now)
      })
    }
    timer = setTimeout(tick, Math.max(0, start - performance.now()))
  })
}
