/** Small numeric helpers for the benchmark: percentiles, medians, formatting. */

/** Nearest-rank percentile (p in 0..100) of `values`; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = Float64Array.from(values).sort()
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? Number.NaN
}

export function median(values: readonly number[]): number {
  return percentile(values, 50)
}

export function mean(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN
  let sum = 0
  for (const v of values) sum += v
  return sum / values.length
}

/** Rounds to `digits` decimals, keeping NaN as null so the JSON line stays valid. */
export function round(v: number, digits = 2): number | null {
  if (!Number.isFinite(v)) return null
  const f = 10 ** digits
  return Math.round(v * f) / f
}

/** A human number: thousands separators, `digits` decimals, `-` for NaN. */
export function fmt(v: number | null | undefined, digits = 0): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-'
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** Renders rows as a left/right aligned text table (numbers right-aligned). */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const isNumeric = header.map((_, i) => rows.every((r) => /^[-\d.,/ x×%()+]*$/.test(r[i] ?? '')))
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => {
        const w = widths[i] ?? 0
        return isNumeric[i] ? c.padStart(w) : c.padEnd(w)
      })
      .join('  ')
      .trimEnd()
  const sep = widths.map((w) => '-'.repeat(w)).join('  ')
  return [line(header), sep, ...rows.map(line)].join('\n')
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `predicate` every few ms until it holds (true) or `ms` pass (false). */
export async function waitUntil(predicate: () => boolean, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms
  while (!predicate()) {
    if (performance.now() > deadline) return false
    await sleep(5)
  }
  return true
}

/** Rounds every number of a result for the JSON line. */
export function rounded(value: unknown): unknown {
  if (typeof value === 'number') return Number.isInteger(value) ? value : round(value, 3)
  if (Array.isArray(value)) return value.map(rounded)
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, rounded(v)]))
  }
  return value
}
