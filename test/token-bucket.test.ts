/**
 * The token bucket's retune and starting level (utils/token-bucket.ts), as
 * the heavy-user throttle uses them: a cap that starts empty, and a rate
 * that changes without losing or inventing the tokens gained so far.
 */
import { describe, expect, it } from 'vitest'
import { TokenBucket } from '../src/utils/token-bucket.js'

describe('a token bucket', () => {
  it('starts full, or at the level it is given', () => {
    expect(new TokenBucket({ perSecond: 10, burst: 5 }, 0).waitMs(5, 0)).toBe(0)
    const empty = new TokenBucket({ perSecond: 10, burst: 5 }, 0, 0)
    expect(empty.waitMs(1, 0)).toBe(100)
    expect(empty.tryTake(1, 100)).toBe(0)
  })

  it('counts the tokens gained so far at the old rate when retuned, and keeps at most the new burst', () => {
    const bucket = new TokenBucket({ perSecond: 10, burst: 100 }, 0, 0)
    bucket.retune({ perSecond: 1000, burst: 100 }, 500) // 5 tokens gained at 10/s
    expect(bucket.perSecond).toBe(1000)
    expect(bucket.waitMs(5, 500)).toBe(0)
    expect(bucket.waitMs(6, 500)).toBe(1) // the 6th at the new rate: 1 ms
    bucket.retune({ perSecond: 1000, burst: 2 }, 500)
    expect(bucket.waitMs(3, 500)).toBe(0) // a cost over the burst takes the whole bucket
    bucket.take(2, 500)
    expect(bucket.waitMs(1, 500)).toBe(1)
  })
})
