/**
 * Live charts of the server's `/metrics` (Prometheus text), sampled every
 * 2 s: updates applied per second (the rate of `superclip_writes_applied_total`
 * summed over its series), open connections, and the event loop's longest
 * delay in the server's current window (src/utils/metrics.ts).
 */
import uPlot from 'uplot'
import { request } from './api.js'

export const METRIC_NAMES = {
  writes: 'superclip_writes_applied_total',
  connections: 'superclip_connections',
  delayMax: 'superclip_event_loop_delay_max_seconds',
} as const

export const SAMPLE_EVERY_MS = 2000
/** Points kept per chart: 5 minutes. */
const KEEP = 150

/** Each metric's value summed over its series (`name{labels} value [timestamp]` lines; comments skipped). */
export function parsePrometheus(text: string): Map<string, number> {
  const sums = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{.*\})?\s+(\S+)/.exec(line)
    if (!match) continue
    const [, name = '', raw = ''] = match
    const value = Number(raw)
    if (Number.isFinite(value)) sums.set(name, (sums.get(name) ?? 0) + value)
  }
  return sums
}

interface Chart {
  plot: uPlot
  ys: (number | null)[]
  readout: HTMLElement
  format: (v: number) => string
}

export interface ChartTargets {
  writes: { chart: HTMLElement; readout: HTMLElement }
  connections: { chart: HTMLElement; readout: HTMLElement }
  delay: { chart: HTMLElement; readout: HTMLElement }
}

export class LiveCharts {
  private readonly xs: number[] = []
  private readonly charts: Chart[] = []
  private timer: ReturnType<typeof setInterval> | undefined
  private inFlight = false
  private last: { at: number; writes: number } | undefined
  private readonly resize = (): void => {
    for (const c of this.charts) c.plot.setSize({ width: widthOf(c.plot.root.parentElement), height: HEIGHT })
  }

  constructor(
    targets: ChartTargets,
    private readonly onError: (message: string) => void,
  ) {
    const one = (target: { chart: HTMLElement; readout: HTMLElement }, label: string, color: string, format: (v: number) => string): Chart => {
      const ys: (number | null)[] = []
      const plot = new uPlot(
        {
          width: widthOf(target.chart),
          height: HEIGHT,
          legend: { show: false },
          cursor: { drag: { x: false, y: false } },
          scales: { x: { time: true }, y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
          series: [{}, { label, stroke: color, width: 2, fill: `${color}22`, spanGaps: false }],
          axes: [{}, { size: 56 }],
        },
        [this.xs, ys],
        target.chart,
      )
      return { plot, ys, readout: target.readout, format }
    }
    this.charts.push(
      one(targets.writes, 'updates/s', '#2563eb', (v) => v.toFixed(1)),
      one(targets.connections, 'connections', '#16a34a', (v) => String(Math.round(v))),
      one(targets.delay, 'ms', '#dc2626', (v) => v.toFixed(1)),
    )
  }

  start(): void {
    if (this.timer !== undefined) return
    window.addEventListener('resize', this.resize)
    this.resize() // made while the page was hidden
    void this.sample()
    this.timer = setInterval(() => void this.sample(), SAMPLE_EVERY_MS)
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
    window.removeEventListener('resize', this.resize)
  }

  private async sample(): Promise<void> {
    if (this.inFlight) return
    this.inFlight = true
    try {
      const metrics = parsePrometheus(await (await request('GET', '/metrics')).text())
      const at = Date.now()
      const writes = metrics.get(METRIC_NAMES.writes) ?? 0
      // No rate for the first sample, nor across a counter reset (a restarted server).
      const rate = this.last !== undefined && writes >= this.last.writes ? (writes - this.last.writes) / ((at - this.last.at) / 1000) : null
      this.last = { at, writes }
      const delayMs = metrics.get(METRIC_NAMES.delayMax)
      this.push(at / 1000, [rate, metrics.get(METRIC_NAMES.connections) ?? null, delayMs === undefined ? null : delayMs * 1000])
    } catch (err) {
      this.onError(`metrics: ${err instanceof Error ? err.message : String(err)}`)
    } finally {
      this.inFlight = false
    }
  }

  private push(x: number, values: (number | null)[]): void {
    this.xs.push(x)
    if (this.xs.length > KEEP) this.xs.shift()
    this.charts.forEach((c, i) => {
      const v = values[i] ?? null
      c.ys.push(v)
      if (c.ys.length > KEEP) c.ys.shift()
      c.readout.textContent = v === null ? '' : c.format(v)
      c.plot.setData([this.xs, c.ys])
    })
  }
}

const HEIGHT = 160

function widthOf(el: HTMLElement | null): number {
  return Math.max(240, Math.floor(el?.clientWidth ?? 320))
}
