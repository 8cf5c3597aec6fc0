/**
 * The event loop's delay (perf_hooks' sampling histogram at 10 ms): its
 * largest value is the longest time the server could not answer anyone, the
 * figure that matters when one client sends something expensive.
 */
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks'

const NS_PER_MS = 1e6

export interface EventLoopDelay {
  maxMs: number
  p99Ms: number
  meanMs: number
  /** How long this window has run. */
  windowMs: number
}

export class EventLoopMonitor {
  private readonly histogram: IntervalHistogram = monitorEventLoopDelay({ resolution: 10 })
  private since = Date.now()

  start(): void {
    this.histogram.enable()
  }

  stop(): void {
    this.histogram.disable()
  }

  read(): EventLoopDelay {
    const h = this.histogram
    const ms = (ns: number): number => (Number.isFinite(ns) && h.count > 0 ? Math.round((ns / NS_PER_MS) * 10) / 10 : 0)
    return { maxMs: ms(h.max), p99Ms: ms(h.percentile(99)), meanMs: ms(h.mean), windowMs: Date.now() - this.since }
  }

  reset(): void {
    this.histogram.reset()
    this.since = Date.now()
  }
}
