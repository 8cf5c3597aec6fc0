/**
 * The server's metrics, in one prom-client registry per server (tests run
 * several servers in one process): `GET /metrics` serves it in Prometheus
 * text format, `GET /admin/metrics` is a JSON view of it
 * (controllers/admin.controller.ts). docs/architecture.md ("Metrics") says
 * where each one is measured.
 *
 * Hot paths (every event, write and outgoing packet) add to the plain number
 * fields below, which the registry reads when it is scraped: a prom-client
 * `inc` hashes its labels and allocates on every call. Histograms are
 * observed once per batch or sync request; the other counters count rarer
 * things (conflicts, refusals, snapshots). Gauges are read on scrape.
 */
import { collectDefaultMetrics, Counter, exponentialBuckets, Gauge, Histogram, Registry } from 'prom-client'
import type { EventLoopMonitor } from './event-loop-monitor.js'

const PREFIX = 'superclip_'

/** The reasons a snapshot is taken for (`SnapshotReason`, models/records.ts), listed at 0 from the start. */
const SNAPSHOT_REASONS = ['manual', 'scheduled', 'before-restore', 'import'] as const

/** What the gauges read when the registry is scraped. */
export interface GaugeSources {
  connections: () => number
  documentsLoaded: () => number
  /** Cluster mode: this node's leases (repositories/postgres-leases.ts). */
  leases?: { owned: number; renewals: number; losses: number } | undefined
  eventLoop: EventLoopMonitor
}

/** Seconds since `start` (a `performance.now()`). */
export const secondsSince = (start: number): number => (performance.now() - start) / 1000

export class Metrics {
  /** Yjs updates applied and stored (an update that adds nothing is not). */
  yjsWrites = 0
  /** JSON change records applied, over sockets and HTTP (a repeated change id is not). */
  jsonWrites = 0
  /** Payload bytes of socket events admitted by the rate limits, as the limits count them (`payloadBytes`). */
  receivedBytes = 0
  /** Bytes of the engine.io packets made for connections (server.ts `packetCreate`). */
  sentBytes = 0

  readonly conflictsOpened: Counter
  readonly conflictsResolved: Counter
  /** From a flush's start to its LevelDB batch written. */
  readonly commitSeconds: Histogram
  readonly commitBatchCommits: Histogram
  /** Bytes of the Yjs updates in a batch. */
  readonly commitBatchBytes: Histogram
  readonly compactions: Counter
  /** Time to answer a `sync:request`, by `mode` (`yjs` | `changes`). */
  readonly syncSeconds: Histogram<'mode'>
  /** Socket events refused, by `event` and error `code`. */
  readonly eventRefusals: Counter<'event' | 'code'>
  /** Handshakes refused, by error `code` (`connect_error` `data.code`). */
  readonly handshakeRefusals: Counter<'code'>
  /** HTTP requests refused, and changes refused inside a batch, by `route` and `code`. */
  readonly httpRefusals: Counter<'route' | 'code'>
  /** Sockets disconnected for their refused events (abuse-monitor.ts). */
  readonly abuseDisconnects: Counter
  /** Snapshots taken, by `reason`: `snapshotsTaken.inc({ reason })` once a snapshot is stored. */
  readonly snapshotsTaken: Counter<'reason'>
  readonly connections: Gauge
  readonly documentsLoaded: Gauge
  readonly ownedUsers: Gauge
  /** The event loop's delay over EventLoopMonitor's window (since start or `/admin/metrics?reset=true`). */
  readonly eventLoopDelayMax: Gauge
  readonly eventLoopDelayP99: Gauge
  readonly eventLoopDelayMean: Gauge
  readonly eventLoopWindow: Gauge
  /** One user's work run back to back in one turn of the event loop (fair-scheduler.ts), by plan. */
  private readonly sliceSeconds: Histogram<'plan'>
  private readonly sliceByPlan = new Map<string, { observe(seconds: number): void }>()

  private sources: GaugeSources | undefined
  private schedulerDepths: (() => Record<string, number>) | undefined
  private schedulerThrottled: (() => Record<string, number> | undefined) | undefined

  constructor(readonly registry: Registry = new Registry()) {
    const registers = [registry]
    const counter = <T extends string>(name: string, help: string, labelNames: readonly T[] = []): Counter<T> =>
      new Counter({ name: PREFIX + name, help, labelNames, registers })
    const histogram = <T extends string>(name: string, help: string, buckets: number[], labelNames: readonly T[] = []): Histogram<T> =>
      new Histogram({ name: PREFIX + name, help, buckets, labelNames, registers })
    /** A counter kept as a plain number on a hot path, read on scrape. */
    const pulled = (name: string, help: string, read: () => number): void => {
      const c: Counter = new Counter({
        name: PREFIX + name,
        help,
        registers,
        collect: () => {
          c.reset()
          c.inc(read())
        },
      })
    }
    const gauge = (name: string, help: string, read: (sources: GaugeSources) => number): Gauge => {
      const g: Gauge = new Gauge({
        name: PREFIX + name,
        help,
        registers,
        collect: () => {
          if (this.sources) g.set(read(this.sources))
        },
      })
      return g
    }

    const writes: Counter<'path'> = new Counter({
      name: `${PREFIX}writes_applied_total`,
      help: 'Writes applied and stored, by path: yjs (Yjs updates) or json (change records, socket and HTTP)',
      labelNames: ['path'],
      registers,
      collect: () => {
        writes.reset()
        writes.inc({ path: 'yjs' }, this.yjsWrites)
        writes.inc({ path: 'json' }, this.jsonWrites)
      },
    })
    pulled('socket_received_bytes_total', 'Payload bytes of socket events admitted (as the rate limits count them)', () => this.receivedBytes)
    pulled('socket_sent_bytes_total', 'Bytes sent to sockets: engine.io packets (WebSocket frame payloads), before framing and compression', () => this.sentBytes)
    this.conflictsOpened = counter('conflicts_opened_total', 'Conflicts recorded')
    this.conflictsResolved = counter('conflicts_resolved_total', 'Conflicts resolved')
    this.commitSeconds = histogram('commit_duration_seconds', 'Group commit: from the flush start to its batch written', [
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
    ])
    this.commitBatchCommits = histogram('commit_batch_commits', 'Commits per group-commit batch', exponentialBuckets(1, 2, 11))
    this.commitBatchBytes = histogram('commit_batch_bytes', 'Bytes of Yjs updates per group-commit batch', exponentialBuckets(256, 4, 8))
    this.compactions = counter('compactions_total', 'Document logs compacted')
    this.syncSeconds = histogram(
      'sync_duration_seconds',
      'Time to answer a sync:request, by mode',
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      ['mode'],
    )
    this.eventRefusals = counter('event_refusals_total', 'Socket events refused, by event and error code', ['event', 'code'])
    this.handshakeRefusals = counter('handshake_refusals_total', 'Socket handshakes refused, by error code', ['code'])
    this.httpRefusals = counter('http_refusals_total', 'HTTP requests refused, and changes refused in a batch, by route and error code', [
      'route',
      'code',
    ])
    this.abuseDisconnects = counter('abuse_disconnects_total', 'Sockets disconnected for their refused events')
    this.snapshotsTaken = counter('snapshots_taken_total', 'Snapshots taken, by reason', ['reason'])
    for (const reason of SNAPSHOT_REASONS) this.snapshotsTaken.inc({ reason }, 0)
    this.connections = gauge('connections', 'Open engine.io connections', (s) => s.connections())
    this.documentsLoaded = gauge('documents_loaded', 'Documents loaded in memory', (s) => s.documentsLoaded())
    this.ownedUsers = gauge('owned_users', 'Cluster mode: users whose lease this node holds', (s) => s.leases?.owned ?? 0)
    pulled('lease_renewals_total', 'Cluster mode: leases renewed', () => this.sources?.leases?.renewals ?? 0)
    pulled('lease_losses_total', 'Cluster mode: leases lost (their documents dropped, their sockets closed)', () => this.sources?.leases?.losses ?? 0)
    const delay = 'Event-loop delay since start or /admin/metrics?reset=true'
    this.eventLoopDelayMax = gauge('event_loop_delay_max_seconds', `${delay}: longest`, (s) => s.eventLoop.read().maxMs / 1000)
    this.eventLoopDelayP99 = gauge('event_loop_delay_p99_seconds', `${delay}: 99th percentile`, (s) => s.eventLoop.read().p99Ms / 1000)
    this.eventLoopDelayMean = gauge('event_loop_delay_mean_seconds', `${delay}: mean`, (s) => s.eventLoop.read().meanMs / 1000)
    this.eventLoopWindow = gauge('event_loop_delay_window_seconds', 'How long the event-loop delay window has run', (s) => s.eventLoop.read().windowMs / 1000)
    /** A gauge by plan, read on scrape. */
    const byPlan = (name: string, help: string, read: () => Record<string, number> | undefined): void => {
      const g: Gauge<'plan'> = new Gauge({
        name: PREFIX + name,
        help,
        labelNames: ['plan'],
        registers,
        collect: () => {
          for (const [plan, value] of Object.entries(read() ?? {})) g.set({ plan }, value)
        },
      })
    }
    byPlan('scheduler_queued_events', "Socket events admitted and waiting for their user's turn (fair scheduling), by plan", () =>
      this.schedulerDepths?.(),
    )
    byPlan(
      'scheduler_throttled_users',
      'Users whose event rate is capped because they take far more than the others while those feel it (heavy-user-throttle.ts), by plan',
      () => this.schedulerThrottled?.(),
    )
    this.sliceSeconds = histogram(
      'scheduler_slice_seconds',
      "One user's events run back to back in one turn of the event loop (their measured time), by plan",
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      ['plan'],
    )
  }

  /** Where the queue-depth and throttled-users gauges read from (fair-scheduler.ts). */
  readSchedulerFrom(depths: () => Record<string, number>, throttled: () => Record<string, number> | undefined): void {
    this.schedulerDepths = depths
    this.schedulerThrottled = throttled
  }

  /** A user's slice of `seconds` on `plan` (once per user and turn: the labelled child is kept). */
  observeSlice(plan: string, seconds: number): void {
    let child = this.sliceByPlan.get(plan)
    if (!child) this.sliceByPlan.set(plan, (child = this.sliceSeconds.labels({ plan })))
    child.observe(seconds)
  }

  /** Where the gauges read from, once the server's parts exist. */
  readGaugesFrom(sources: GaugeSources): void {
    this.sources = sources
  }

  /**
   * Adds prom-client's default process and Node.js metrics (CPU, memory,
   * heap, GC, handles), unprefixed as dashboards expect them, except its
   * event-loop lag: that has one source here, EventLoopMonitor (whose window
   * `/admin/metrics?reset=true` resets; prom-client's resets on every
   * scrape). prom-client cannot switch its own loop histogram off, so it
   * samples once a second instead of every 10 ms.
   */
  collectDefaults(): this {
    collectDefaultMetrics({ register: this.registry, eventLoopMonitoringPrecision: 1000 })
    for (const { name } of this.registry.getMetricsAsArray()) {
      if (name.startsWith('nodejs_eventloop_lag_')) this.registry.removeSingleMetric(name)
    }
    return this
  }
}
