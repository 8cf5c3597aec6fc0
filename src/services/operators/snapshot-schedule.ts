/**
 * Scheduled snapshots (protocol §9): every `SNAPSHOT_EVERY_MS`, each user
 * whose document changed since its newest snapshot gets a `scheduled` one,
 * and scheduled snapshots past the retention (`SNAPSHOT_RETENTION`) are
 * deleted. A round walks the users from their stored summaries (no document
 * is loaded to find out), and spreads the snapshots it takes over the
 * interval instead of taking them in one tick.
 *
 * Retention, as `SNAPSHOT_RETENTION` (default `24h,30d`): keep the newest
 * scheduled snapshot of each of the last N hours and of each of the last M
 * days; delete the other scheduled ones. Snapshots taken by hand, before a
 * restore or by an import are kept until an operator deletes them.
 */
import type { SnapshotMeta } from '../../models/records.js'
import type { DocumentRepository } from '../../repositories/document.repository.js'
import type { Logger } from '../../utils/logger.js'
import type { OperatorService } from './operator.service.js'

export interface SnapshotRetention {
  hours: number
  days: number
}

const HOUR_MS = 3600_000
const DAY_MS = 24 * HOUR_MS
/** Users read per page of a round. */
const PAGE = 200

/** Parses `24h,30d` (either part may be 0 or left out). */
export function parseRetention(value: string): SnapshotRetention | undefined {
  const parts = value.split(',').map((p) => p.trim()).filter(Boolean)
  const retention: SnapshotRetention = { hours: 0, days: 0 }
  for (const part of parts) {
    const m = /^(\d{1,5})([hd])$/.exec(part)
    if (!m) return undefined
    if (m[2] === 'h') retention.hours = Number(m[1])
    else retention.days = Number(m[1])
  }
  return parts.length > 0 ? retention : undefined
}

/** The scheduled snapshots to delete under `retention` at `now`: all but the newest of each kept hour and day. */
export function expiredSnapshots(snapshots: readonly SnapshotMeta[], retention: SnapshotRetention, now: number): SnapshotMeta[] {
  const scheduled = snapshots.filter((s) => s.reason === 'scheduled').sort((a, b) => b.takenAt - a.takenAt)
  const kept = new Set<SnapshotMeta>()
  const keepNewestPer = (slotMs: number, slots: number) => {
    const seen = new Set<number>()
    for (const s of scheduled) {
      const slot = Math.floor(s.takenAt / slotMs)
      if (slot <= Math.floor(now / slotMs) - slots || seen.has(slot)) continue
      seen.add(slot)
      kept.add(s)
    }
  }
  keepNewestPer(HOUR_MS, retention.hours)
  keepNewestPer(DAY_MS, retention.days)
  return scheduled.filter((s) => !kept.has(s))
}

export class SnapshotSchedule {
  private timer: NodeJS.Timeout | undefined
  private round: Promise<void> | undefined
  private stopped = false

  constructor(
    private readonly operators: OperatorService,
    private readonly repo: DocumentRepository,
    private readonly options: { everyMs: number; retention: SnapshotRetention },
    private readonly log: Logger,
    private readonly wait: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms).unref()),
  ) {}

  /** Runs a round every `everyMs` (none when 0). */
  start(): void {
    if (this.options.everyMs <= 0) return
    this.timer = setInterval(() => {
      if (this.round) return // the last round is still spreading its snapshots
      this.round = this.runRound().then(
        ({ taken, deleted }) => this.log.info({ taken: taken.length, deleted }, 'scheduled snapshots'),
        (err: unknown) => this.log.error({ err }, 'scheduled snapshot round failed'),
      )
      void this.round.finally(() => (this.round = undefined))
    }, this.options.everyMs).unref()
  }

  async stop(): Promise<void> {
    this.stopped = true
    clearInterval(this.timer)
    await this.round
  }

  /**
   * One round at `now`: snapshots of the users changed since their newest
   * snapshot, spread over `spreadMs` (default the interval), then retention.
   * Returns the users snapshotted, the wait between two of them, and the snapshots deleted.
   */
  async runRound(now = Date.now(), spreadMs = this.options.everyMs): Promise<{ taken: string[]; gapMs: number; deleted: number }> {
    const due: string[] = []
    const expired: { userId: string; ids: string[] }[] = []
    for (let cursor: string | undefined, page: string[]; (page = await this.repo.documentIds(cursor, PAGE)).length > 0; cursor = page.at(-1)) {
      for (const userId of page) {
        const [summary, snapshots] = await Promise.all([this.repo.readSummary(userId), this.repo.snapshots(userId)])
        // Changed since its newest snapshot: a commit after the clock that snapshot holds.
        const newest = Math.max(0, ...snapshots.map((s) => s.clock))
        if (summary && summary.lastActivityAt > newest) due.push(userId)
        const old = expiredSnapshots(snapshots, this.options.retention, now)
        if (old.length > 0) expired.push({ userId, ids: old.map((s) => s.id) })
      }
      if (page.length < PAGE) break
    }
    const gap = due.length > 1 ? spreadMs / due.length : 0
    const taken: string[] = []
    for (const userId of due) {
      if (this.stopped) break
      try {
        await this.operators.takeSnapshot(userId, 'scheduled')
        taken.push(userId)
      } catch (err) {
        this.log.warn({ err, userId }, 'scheduled snapshot failed')
      }
      if (gap > 0) await this.wait(gap)
    }
    let deleted = 0
    for (const { userId, ids } of expired) {
      await this.repo.deleteSnapshots(userId, ids)
      deleted += ids.length
    }
    return { taken, gapMs: gap, deleted }
  }
}
