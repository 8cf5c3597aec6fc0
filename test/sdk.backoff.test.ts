/** The SDK's reconnect delays: capped exponential with equal jitter, or the server's hint. */
import { describe, expect, it } from 'vitest'
import { Backoff } from '../client/src/backoff.js'

describe('SDK backoff', () => {
  it('doubles from the first delay to the cap, each delay drawn from its upper half', () => {
    const lowest = new Backoff({ initialDelayMs: 500, maxDelayMs: 4000 }, () => 0)
    expect(Array.from({ length: 6 }, () => lowest.next())).toEqual([250, 500, 1000, 2000, 2000, 2000])
    const highest = new Backoff({ initialDelayMs: 500, maxDelayMs: 4000 }, () => 0.999999)
    expect(Array.from({ length: 6 }, () => highest.next())).toEqual([500, 1000, 2000, 4000, 4000, 4000])
  })

  it('waits the hint, plus at most a quarter of it (up to 250 ms) of jitter', () => {
    expect(new Backoff({}, () => 0).next(2731)).toBe(2731)
    expect(new Backoff({}, () => 0.999999).next(2731)).toBe(2981)
    expect(new Backoff({}, () => 0.999999).next(400)).toBe(500)
  })

  it('without jitter, every client waits the same: the cap of each step, or the hint as given', () => {
    const fixed = new Backoff({ jitter: false, initialDelayMs: 100, maxDelayMs: 1000 }, () => 0.5)
    expect([fixed.next(), fixed.next(), fixed.next(3000), fixed.next(), fixed.next()]).toEqual([100, 200, 3000, 800, 1000])
  })

  it('starts over after a reset (a completed sync)', () => {
    const backoff = new Backoff({ initialDelayMs: 500 }, () => 0.999999)
    backoff.next()
    backoff.next()
    backoff.reset()
    expect(backoff.next()).toBe(500)
  })
})
