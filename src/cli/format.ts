/** Output of `npm run admin`: tables and key/value lists for people, a progress bar on stderr when it is a terminal. */
import cliProgress from 'cli-progress'

export type Cell = string | number | boolean | null | undefined

export interface Column<T> {
  header: string
  value: (row: T) => Cell
  /** Right-aligned (numbers). */
  right?: boolean
}

const text = (cell: Cell): string => (cell === null || cell === undefined ? '-' : String(cell))

/** A plain-text table: a header, a rule, one line per row; `empty` when there are no rows. */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[], empty = '(none)'): string {
  if (rows.length === 0) return `${empty}\n`
  const cells = rows.map((row) => columns.map((c) => text(c.value(row))))
  const widths = columns.map((c, i) => Math.max(c.header.length, ...cells.map((r) => (r[i] as string).length)))
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => (columns[i]?.right ? v.padStart(widths[i] ?? 0) : v.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd()
  return [line(columns.map((c) => c.header)), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n') + '\n'
}

/** `key  value` lines, the keys aligned. */
export function keyValues(pairs: readonly (readonly [string, Cell])[]): string {
  const width = Math.max(...pairs.map(([k]) => k.length))
  return pairs.map(([k, v]) => `${k.padEnd(width)}  ${text(v)}`).join('\n') + '\n'
}

/** An ISO date for a time in ms (`-` for none or 0). */
export const isoTime = (ms: number | null | undefined): string => (ms ? new Date(ms).toISOString() : '-')

/** `clip:2 folder:1` (types with none left out). */
export const counts = (byType: Record<string, number>): string =>
  Object.entries(byType)
    .filter(([, n]) => n > 0)
    .map(([type, n]) => `${type}:${n}`)
    .join(' ') || '-'

export interface Progress {
  /** `n` (default 1) more items done. */
  tick(n?: number): void
  /** The total, when it grows as it is found (users --all). */
  setTotal(total: number): void
  stop(): void
}

const NO_PROGRESS: Progress = { tick() {}, setTotal() {}, stop() {} }

/** A progress bar on stderr, only when stderr is a terminal (never in a pipe, a log or a test). */
export function progress(label: string, total: number | undefined): Progress {
  if (!process.stderr.isTTY) return NO_PROGRESS
  const format = total === undefined ? `${label} {value}` : `${label} [{bar}] {percentage}% | {value}/{total} | ETA {eta_formatted}`
  const bar = new cliProgress.SingleBar({ stream: process.stderr, format, hideCursor: true, clearOnComplete: true }, cliProgress.Presets.shades_classic)
  bar.start(total ?? 0, 0)
  return {
    tick: (n = 1) => bar.increment(n),
    setTotal: (n) => bar.setTotal(n),
    stop: () => bar.stop(),
  }
}
