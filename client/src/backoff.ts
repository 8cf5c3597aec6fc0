/**
 * When to try connecting again: capped exponential backoff with jitter, or
 * the server's `retryAfterMs` hint when it gave one (the server already
 * spreads its hints over a window, so clients refused together return apart).
 */
export interface BackoffOptions {
  /** First delay after a failure, ms (default 500). */
  initialDelayMs?: number
  /** Largest delay, ms (default 30,000). */
  maxDelayMs?: number
  /**
   * Randomize delays (default true): each is drawn from [d/2, d] ("equal
   * jitter"), and a hint h from [h, h + min(h, 1000) / 4]. Off, every client
   * waits exactly the same: only for measuring what jitter buys.
   */
  jitter?: boolean
}

export class Backoff {
  private failures = 0
  private readonly initial: number
  private readonly max: number
  private readonly jitter: boolean

  constructor(options: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.initial = options.initialDelayMs ?? 500
    this.max = options.maxDelayMs ?? 30_000
    this.jitter = options.jitter ?? true
  }

  /** The delay before the next attempt; each call counts one more failure. */
  next(hintMs?: number): number {
    const exponent = Math.min(this.failures, 30)
    this.failures += 1
    if (hintMs !== undefined) return Math.round(this.jitter ? hintMs + (this.random() * Math.min(hintMs, 1000)) / 4 : hintMs)
    const ceiling = Math.min(this.max, this.initial * 2 ** exponent)
    return Math.round(this.jitter ? ceiling / 2 + (this.random() * ceiling) / 2 : ceiling)
  }

  /** A sync completed: the next failure starts from the first delay again. */
  reset(): void {
    this.failures = 0
  }
}
