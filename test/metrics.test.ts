/**
 * `GET /metrics` (src/utils/metrics.ts): Prometheus text format behind the
 * admin token, counters that move by exactly what the devices did, and
 * `/admin/metrics` reading the same numbers.
 */
import { describe, expect, it } from 'vitest'
import { Registry } from 'prom-client'
import { useServer } from './helpers/fixture.js'
import { changeOf, HttpSync } from './helpers/http-client.js'
import { yjsWrite } from './helpers/json-device.js'
import { attempt, openedSockets } from './helpers/raw-client.js'
import { NO_RATE_LIMITS, tokenFor } from './helpers/server.js'

interface Sample {
  name: string
  labels: Record<string, string>
  value: number
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*'
const HELP = new RegExp(`^# HELP (${NAME}) (.*)$`)
const TYPE = new RegExp(`^# TYPE (${NAME}) (counter|gauge|histogram|summary|untyped)$`)
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)$`)
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(?:,|$)/y
const VALUE = /^(?:[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/

/**
 * A strict parser of the Prometheus text format (0.0.4): every line is a
 * `# HELP` or `# TYPE` comment or a sample `name{labels} value` of a family
 * whose TYPE came before it (histograms as `_bucket`, `_sum`, `_count`).
 * prom-client has no parser of its own. Throws on anything else.
 */
function parsePrometheus(text: string): Sample[] {
  expect(text.endsWith('\n')).toBe(true)
  const types = new Map<string, string>()
  const samples: Sample[] = []
  for (const line of text.slice(0, -1).split('\n')) {
    if (line === '') continue
    const help = HELP.exec(line)
    if (help) continue
    const type = TYPE.exec(line)
    if (type) {
      expect(types.has(type[1]!), `TYPE of ${type[1]} twice`).toBe(false)
      types.set(type[1]!, type[2]!)
      continue
    }
    const sample = SAMPLE.exec(line)
    if (!sample) throw new Error(`not a Prometheus line: ${JSON.stringify(line)}`)
    const [, name = '', labelText = '', value = ''] = sample
    const family = types.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '')
    const familyType = types.get(family)
    if (familyType === undefined) throw new Error(`sample before its TYPE: ${line}`)
    if (family !== name) expect(familyType, line).toMatch(/^(histogram|summary)$/)
    if (!VALUE.test(value)) throw new Error(`not a value: ${line}`)
    const labels: Record<string, string> = {}
    LABEL.lastIndex = 0
    while (LABEL.lastIndex < labelText.length) {
      const label = LABEL.exec(labelText)
      if (!label) throw new Error(`bad labels: ${line}`)
      labels[label[1]!] = label[2]!
    }
    samples.push({ name, labels, value: Number(value) })
  }
  return samples
}

/** The sum of the samples named `name` whose labels include `labels`. */
function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const matching = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  return matching.reduce((sum, s) => sum + s.value, 0)
}

async function scrape(url: string, auth?: string): Promise<{ status: number; type: string | null; text: string }> {
  const res = await fetch(`${url}/metrics`, auth === undefined ? {} : { headers: { authorization: auth } })
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() }
}

describe('GET /metrics', () => {
  const t = useServer()
  const opened = openedSockets()

  it('needs the admin token; serves Prometheus text with the process metrics and one event-loop source', async () => {
    const { url, config } = await t.start()
    for (const auth of [undefined, `Bearer ${config.adminToken}x`, config.adminToken, `Bearer ${await tokenFor('alice')}`]) {
      const refused = await scrape(url, auth)
      expect(refused.status).toBe(401)
      expect(JSON.parse(refused.text)).toEqual({ error: { code: 'UNAUTHORIZED', message: expect.any(String) } })
    }
    const { status, type, text } = await scrape(url, `Bearer ${config.adminToken}`)
    expect(status).toBe(200)
    expect(type).toBe(new Registry().contentType)
    const samples = parsePrometheus(text)
    const names = new Set(samples.map((s) => s.name))
    for (const name of [
      'superclip_connections',
      'superclip_documents_loaded',
      'superclip_writes_applied_total',
      'superclip_socket_received_bytes_total',
      'superclip_socket_sent_bytes_total',
      'superclip_commit_duration_seconds_count',
      'superclip_event_loop_delay_max_seconds',
      'process_cpu_user_seconds_total',
      'nodejs_heap_size_used_bytes',
    ]) {
      expect(names, name).toContain(name)
    }
    expect([...names].filter((n) => n.startsWith('nodejs_eventloop_lag'))).toEqual([])
    for (const reason of ['manual', 'scheduled', 'before-restore', 'import']) {
      expect(samples).toContainEqual({ name: 'superclip_snapshots_taken_total', labels: { reason }, value: 0 })
    }
    // The 401s above were counted.
    expect(valueOf(samples, 'superclip_http_refusals_total', { route: 'GET /metrics', code: 'UNAUTHORIZED' })).toBe(4)
  })

  it('counts writes, bytes and commits exactly; gauges hold what the test set up; /admin/metrics reads the same', async () => {
    const { url, config } = await t.start(undefined, NO_RATE_LIMITS)
    const auth = `Bearer ${config.adminToken}`
    const phone = await t.device('alice', 'phone')
    const laptop = await t.jsonDevice('alice', 'laptop')
    await t.jsonDevice('bob', 'tablet')
    await phone.flushed()
    const before = parsePrometheus((await scrape(url, auth)).text)

    const N = 7
    const M = 4
    // The phone's own updates (local transactions have no origin; relays applied have one).
    let updateBytes = 0
    phone.doc.on('update', (update: Uint8Array, origin: unknown) => {
      if (origin === null) updateBytes += update.byteLength
    })
    for (let i = 0; i < N; i++) await yjsWrite(phone, () => phone.addClip(`y${i}`, `from the phone ${i}`))
    for (let i = 0; i < M; i++) await laptop.write('create', { entityType: 'clip', entityId: `j${i}`, data: { content: `from the laptop ${i}` } })
    await phone.flushed()
    const after = parsePrometheus((await scrape(url, auth)).text)
    const delta = (name: string, labels: Record<string, string> = {}) => valueOf(after, name, labels) - valueOf(before, name, labels)

    expect(delta('superclip_writes_applied_total', { path: 'yjs' })).toBe(N)
    expect(delta('superclip_writes_applied_total', { path: 'json' })).toBe(M)
    // Every write is one commit; device states of completed syncs may ride along in the same batches.
    expect(delta('superclip_commit_batch_commits_sum')).toBeGreaterThanOrEqual(N + M)
    expect(delta('superclip_commit_duration_seconds_count')).toBeGreaterThan(0)
    expect(delta('superclip_commit_duration_seconds_count')).toBe(delta('superclip_commit_batch_commits_count'))
    expect(valueOf(after, 'superclip_commit_duration_seconds_bucket', { le: '+Inf' })).toBe(valueOf(after, 'superclip_commit_duration_seconds_count'))
    // The phone's updates were stored (with the laptop's, as updates too) and admitted as binary payloads.
    expect(updateBytes).toBeGreaterThan(0)
    expect(delta('superclip_commit_batch_bytes_sum')).toBeGreaterThan(updateBytes)
    expect(delta('superclip_socket_received_bytes_total')).toBeGreaterThan(updateBytes)
    // The server sent acks, relays to the phone and change records to the laptop.
    const relayed = phone.received.reduce((sum, r) => sum + r.update.byteLength, 0)
    expect(relayed).toBeGreaterThan(0)
    expect(delta('superclip_socket_sent_bytes_total')).toBeGreaterThan(relayed)
    // One state-vector sync (the phone) and two change-log syncs of one page each (laptop, tablet), all before `before`.
    expect(valueOf(before, 'superclip_sync_duration_seconds_count', { mode: 'yjs' })).toBe(1)
    expect(valueOf(before, 'superclip_sync_duration_seconds_count', { mode: 'changes' })).toBe(2)
    expect(valueOf(after, 'superclip_connections')).toBe(3)
    expect(valueOf(after, 'superclip_documents_loaded')).toBe(2)
    expect(valueOf(after, 'superclip_event_loop_delay_window_seconds')).toBeGreaterThan(0)

    const admin = await new HttpSync(url, config.adminToken, 'x').request('GET', '/admin/metrics')
    expect(admin.body).toMatchObject({ connections: 3, documentsLoaded: 2 })
  })

  it('counts refusals by code: socket events, handshakes and HTTP sync', async () => {
    const { url, config } = await t.start()
    const auth = `Bearer ${config.adminToken}`
    const phone = await t.device('alice', 'phone')
    const laptop = await t.jsonDevice('alice', 'laptop')
    expect(await phone.socket.emitWithAck('sync:update', { update: 'not binary' })).toMatchObject({ ok: false, error: { code: 'INVALID_PAYLOAD' } })
    expect(await laptop.send('update', { entityType: 'clip', entityId: 'missing', data: { content: 'x' }, version: 1 })).toMatchObject({
      ok: false,
      error: { code: 'NOT_FOUND' },
    })
    expect(await attempt(url, 'not-a-token', 'phone', opened)).toMatchObject({ message: 'unauthorized', data: { code: 'UNAUTHORIZED' } })
    expect((await new HttpSync(url, undefined, 'worker').changes()).status).toBe(401)
    const batch = await new HttpSync(url, await tokenFor('alice'), 'worker').send([
      changeOf('create', 'h1', { content: 'ok' }),
      changeOf('update', 'missing', { content: 'x' }, 1),
    ])
    expect(batch.body.results.map((r) => r.ok)).toEqual([true, false])

    const samples = parsePrometheus((await scrape(url, auth)).text)
    const refusals = samples.filter((s) => s.name === 'superclip_event_refusals_total')
    expect(refusals).toEqual(
      expect.arrayContaining([
        { name: 'superclip_event_refusals_total', labels: { event: 'sync:update', code: 'INVALID_PAYLOAD' }, value: 1 },
        { name: 'superclip_event_refusals_total', labels: { event: 'sync:entity_updated', code: 'NOT_FOUND' }, value: 1 },
      ]),
    )
    expect(refusals.reduce((sum, s) => sum + s.value, 0)).toBe(2)
    expect(samples.filter((s) => s.name === 'superclip_handshake_refusals_total')).toEqual([
      { name: 'superclip_handshake_refusals_total', labels: { code: 'UNAUTHORIZED' }, value: 1 },
    ])
    expect(valueOf(samples, 'superclip_http_refusals_total', { route: 'GET /v1/sync/changes', code: 'UNAUTHORIZED' })).toBe(1)
    expect(valueOf(samples, 'superclip_http_refusals_total', { route: 'POST /v1/sync/changes', code: 'NOT_FOUND' })).toBe(1)
    expect(valueOf(samples, 'superclip_writes_applied_total', { path: 'json' })).toBe(1)

    const admin = await new HttpSync(url, config.adminToken, 'x').request('GET', '/admin/metrics')
    expect(admin.body).toMatchObject({ refusals: { rateLimited: 0, invalid: 1, disconnected: 0, authFailures: 1, connectionsRefused: 0 } })
  })

  it('is in the OpenAPI document', async () => {
    const { url, config } = await t.start()
    const { body } = await new HttpSync(url, config.adminToken, 'x').request<{ paths: Record<string, { get?: { summary?: string; security?: unknown } }> }>(
      'GET',
      '/admin/openapi.json',
    )
    expect(body.paths['/metrics']?.get).toMatchObject({ summary: expect.stringContaining('Prometheus'), security: [{ adminToken: [] }] })
  })
})
