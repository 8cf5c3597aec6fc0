/**
 * Token buckets: the rate limiter's one primitive (issue 4, item 4). A bucket
 * holds up to `burst` tokens and gains `perSecond` of them each second; an
 * action costing n tokens passes when n are there, and is otherwise told how
 * long until they will be. Time is passed in (ms), so tests need no clock.
 *
 * Written here rather than taken from npm: rate-limiter-flexible's in-memory
 * limiter counts fixed windows behind a Promise per call (with a timer per
 * key), and `limiter` cannot say how long to wait; the server needs a
 * synchronous check of several buckets at once before it takes from any.
 */

export interface Rate {
  /** Tokens gained per second. */
  perSecond: number
  /** Tokens held at most (the largest burst). */
  burst: number
}

export class TokenBucket {
  private tokens: number
  private at: number

  /** `tokens`: what it holds at first (full by default). */
  constructor(
    private rate: Rate,
    now: number,
    tokens = rate.burst,
  ) {
    this.tokens = tokens
    this.at = now
  }

  private refill(now: number): void {
    if (now <= this.at) return
    this.tokens = Math.min(this.rate.burst, this.tokens + ((now - this.at) / 1000) * this.rate.perSecond)
    this.at = now
  }

  /** A cost above the burst could never pass: it takes the whole bucket instead. */
  private cost(n: number): number {
    return Math.min(n, this.rate.burst)
  }

  /** Milliseconds until `n` tokens are there (0: now). */
  waitMs(n: number, now: number): number {
    this.refill(now)
    const missing = this.cost(n) - this.tokens
    if (missing <= 0) return 0
    return this.rate.perSecond > 0 ? Math.ceil((missing / this.rate.perSecond) * 1000) : Infinity
  }

  /** Takes `n` tokens (call after `waitMs` said 0). */
  take(n: number, now: number): void {
    this.refill(now)
    this.tokens -= this.cost(n)
  }

  /** Takes `n` tokens if they are there; returns the wait otherwise (0: taken). */
  tryTake(n: number, now: number): number {
    const wait = this.waitMs(n, now)
    if (wait === 0) this.take(n, now)
    return wait
  }

  /** The rate from now on: tokens gained until now are counted at the old one, and kept up to the new burst. */
  retune(rate: Rate, now: number): void {
    this.refill(now)
    this.rate = rate
    this.tokens = Math.min(this.tokens, rate.burst)
  }

  get perSecond(): number {
    return this.rate.perSecond
  }

  /** Whether the bucket is full: then it is no different from a new one and may be dropped. */
  full(now: number): boolean {
    this.refill(now)
    return this.tokens >= this.rate.burst
  }
}

/**
 * Buckets by key (a user, an IP address), made on first use. Full buckets are
 * swept away every `sweepEvery` new keys, so a stream of one-off keys costs
 * memory only for those still being limited.
 */
export class KeyedBuckets {
  private readonly buckets = new Map<string, TokenBucket>()
  private added = 0

  constructor(
    private readonly rateOf: (key: string) => Rate,
    private readonly sweepEvery = 1024,
  ) {}

  get(key: string, now: number): TokenBucket {
    let bucket = this.buckets.get(key)
    if (!bucket) {
      if (++this.added % this.sweepEvery === 0) this.sweep(now)
      bucket = new TokenBucket(this.rateOf(key), now)
      this.buckets.set(key, bucket)
    }
    return bucket
  }

  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) if (bucket.full(now)) this.buckets.delete(key)
  }
}
