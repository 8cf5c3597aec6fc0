/**
 * The abuser of the flood run (scripts/bench/flood.ts), in its own process
 * (`node --import tsx scripts/bench/flood-abuser.ts`) so that its client-side
 * CPU does not stall the benchmark's event loop, which times the normal
 * devices' acks.
 *
 * One socket.io-client socket (websocket transport) with the token in
 * FLOOD_TOKEN, device `abuser`, against FLOOD_URL. It connects and prints
 * `{"type":"ready"}`; on the line `go` (stdin) it emits `sync:update` as fast as
 * it can, keeping up to FLOOD_WINDOW (default 1,000) unacknowledged, yielding
 * with setImmediate every 200 emits. Each update is a valid one on its own: one
 * new clip under a new client id (makeUpdate; the first 5,000, or a whole
 * import, are made before `ready`, so that making them takes no CPU from the
 * server while it is measured), so a refused update never makes a later one
 * depend on something the server lacks. (FLOOD_CLIENTS=one: every
 * update from one Y.Doc, as a real client sends them.) Disconnected by the
 * server (strikes: `sync:error` event `abuse`) or refused at the handshake, it
 * connects again at once, ignoring every retry hint. On the line `stop` it
 * disconnects, prints `{"type":"report", ...}` (FloodAbuserReport) and exits.
 * It exits too when stdin closes (the benchmark is gone).
 *
 * FLOOD_MODE=import makes it a legitimate bulk import instead (issue 15): the
 * FLOOD_IMPORT_CLIPS clips (20,000) from one Y.Doc, one update each, sent as
 * fast as its plan allows: at most FLOOD_WINDOW in flight, paced by a token
 * bucket of the plan's socket rate (FLOOD_RATE per second, FLOOD_BURST at
 * once) as a well-behaved client would. It prints `{"type":"done"}` once every
 * clip is acknowledged, and never reconnects: a refusal or a disconnect ends
 * the import (it is reported).
 */
import { createInterface } from 'node:readline'
import { io } from 'socket.io-client'
import * as Y from 'yjs'
import { putClips } from './device.js'
import { field } from './socket-device.js'

/** What the abuser reports to the benchmark, counted from `go` to `stop`. */
export interface FloodAbuserReport {
  type: 'report'
  window: number
  clients: 'new' | 'one'
  /** `go` to `stop`, s. */
  floodSec: number
  /** `sync:update`s emitted. */
  sent: number
  /** Acked `{ ok: true }`: applied and stored by the server. */
  ackedOk: number
  /** Refused, by error code. */
  refused: Record<string, number>
  /** Emitted on a socket that then disconnected before answering them. */
  unansweredAtDisconnect: number
  /** Emitted and not yet answered at `stop`. */
  unansweredAtStop: number
  /** `sync:error` events received, and those of them saying the socket is disconnected for abuse. */
  syncErrors: number
  abuseNotices: number
  /** Disconnects, by reason (socket.io-client's). */
  disconnects: Record<string, number>
  /** Successful connects after the first. */
  reconnects: number
  /** Handshakes refused (`connect_error`), by message. */
  connectRefused: Record<string, number>
  /** CPU of this process from `go` to `stop`, µs, and over its whole life (tsx start included). */
  floodCpuUs: number
  totalCpuUs: number
  /** FLOOD_MODE=import: clips to import (0 for a flood), and when the last was acknowledged (s from `go`), or null. */
  importClips: number
  importDoneSec: number | null
}

const url = process.env.FLOOD_URL
const token = process.env.FLOOD_TOKEN
const WINDOW = Number(process.env.FLOOD_WINDOW ?? 1000)
const IMPORT = process.env.FLOOD_MODE === 'import'
const IMPORT_CLIPS = Number(process.env.FLOOD_IMPORT_CLIPS ?? 20_000)
const RATE = Number(process.env.FLOOD_RATE ?? Infinity)
const BURST = Number(process.env.FLOOD_BURST ?? Infinity)
/** `new`: each update under a new client id (default); `one`: every update from one Y.Doc, one client id (always for an import). */
const CLIENTS = IMPORT || process.env.FLOOD_CLIENTS === 'one' ? 'one' : 'new'
/** Emits per turn of the event loop before yielding (so that acks get read). */
const BATCH = 200
if (!url || !token || !(WINDOW > 0)) {
  process.stderr.write('flood-abuser: FLOOD_URL and FLOOD_TOKEN are required, FLOOD_WINDOW must be positive\n')
  process.exit(2)
}

const write = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`)
const bump = (counts: Record<string, number>, key: string) => (counts[key] = (counts[key] ?? 0) + 1)

const report: FloodAbuserReport = {
  type: 'report',
  window: WINDOW,
  clients: CLIENTS,
  floodSec: 0,
  sent: 0,
  ackedOk: 0,
  refused: {},
  unansweredAtDisconnect: 0,
  unansweredAtStop: 0,
  syncErrors: 0,
  abuseNotices: 0,
  disconnects: {},
  reconnects: 0,
  connectRefused: {},
  floodCpuUs: 0,
  totalCpuUs: 0,
  importClips: IMPORT ? IMPORT_CLIPS : 0,
  importDoneSec: null,
}

let flooding = false
let stopping = false
let ready = false
let inflight = 0
/** Connection generation: acks of an earlier connection are not counted against this one's window. */
let generation = 0
let scheduled = false
let seq = 0
let floodStart = 0
let cpuAtGo = process.cpuUsage()
/** The import's client-side token bucket (the plan's socket rate). */
let tokens = BURST
let refilledAt = 0
/** An import ended by a refusal or a disconnect: nothing more is sent. */
let importEnded = false

/** Whether the plan's rate allows one more update now (an import paces itself; a flood does not). */
function mayTake(): boolean {
  if (!IMPORT) return true
  if (importEnded || seq >= IMPORT_CLIPS) return false
  const now = performance.now()
  tokens = Math.min(BURST, tokens + ((now - refilledAt) / 1000) * RATE)
  refilledAt = now
  if (tokens < 1) return false
  tokens--
  return true
}

/** Updates made per Y.Doc before a fresh one: a doc with many client ids makes each transaction slower (its state vector). */
const UPDATES_PER_DOC = 32
let doc = new Y.Doc()
let captured: Uint8Array | undefined
const capture = (update: Uint8Array) => (captured = update)
doc.on('update', capture)

/**
 * Update `n` (made in order): one new clip under a new client id, which
 * depends on nothing (a new key of the top-level `clips` map, no deletions),
 * so it is valid whatever the server has applied or refused before. About
 * 30 µs, against 200 for a fresh Y.Doc each. With FLOOD_CLIENTS=one (and
 * for an import), the next update of one Y.Doc instead, as a real client
 * sends them: once one is refused, the later ones miss it.
 */
function makeUpdate(n: number): Uint8Array {
  if (CLIENTS === 'new') {
    if (n % UPDATES_PER_DOC === 0 && n > 0) {
      doc.destroy()
      doc = new Y.Doc()
      doc.on('update', capture)
    }
    doc.clientID = Math.floor(Math.random() * 2 ** 32)
  }
  captured = undefined
  putClips(Y, doc, 'abuser', n, 1)
  if (!captured) throw new Error('the transaction produced no update')
  return captured
}

/**
 * Updates made before `ready`, so that making them takes no CPU from the
 * server while it is measured: the whole import, or the first
 * FLOOD_PREPARED (5,000) of a flood; any beyond are made as they are sent.
 */
const prepared = Array.from({ length: IMPORT ? IMPORT_CLIPS : Number(process.env.FLOOD_PREPARED ?? 5000) }, (_, n) => makeUpdate(n))

function nextUpdate(): Uint8Array {
  const n = seq++
  return prepared[n] ?? makeUpdate(n)
}

const socket = io(url, {
  auth: { token, deviceId: 'abuser' },
  transports: ['websocket'],
  reconnection: false,
  autoConnect: false,
  forceNew: true,
})

function schedule(): void {
  if (scheduled || !flooding) return
  scheduled = true
  setImmediate(pump)
}

function pump(): void {
  scheduled = false
  if (!flooding || !socket.connected) return
  const gen = generation
  for (let n = 0; n < BATCH && inflight < WINDOW && mayTake(); n++) {
    inflight++
    report.sent++
    socket.emit('sync:update', { update: nextUpdate() }, (reply: unknown) => {
      if (gen !== generation) return
      inflight--
      if (!flooding) return
      if (field(reply, 'ok') === true) report.ackedOk++
      else {
        const code = field(field(reply, 'error'), 'code')
        bump(report.refused, typeof code === 'string' ? code : 'unknown')
        importEnded = IMPORT
      }
      if (IMPORT && report.ackedOk === IMPORT_CLIPS) {
        report.importDoneSec = (performance.now() - floodStart) / 1000
        write({ type: 'done' })
      }
      schedule()
    })
  }
  // Out of window: the next ack schedules. An import out of tokens waits for its bucket.
  if (inflight >= WINDOW) return
  if (!IMPORT) return schedule()
  if (importEnded || seq >= IMPORT_CLIPS) return
  if (tokens < 1) setTimeout(schedule, Math.ceil(1000 / RATE))
  else schedule()
}

function reconnect(): void {
  if (IMPORT && flooding) importEnded = true
  else if (!stopping) socket.connect()
}

socket.on('connect', () => {
  generation++
  inflight = 0
  if (!ready) {
    ready = true
    write({ type: 'ready' })
  } else if (flooding) report.reconnects++
  schedule()
})
socket.on('disconnect', (reason: string) => {
  generation++
  if (flooding) {
    bump(report.disconnects, reason)
    report.unansweredAtDisconnect += inflight
  }
  inflight = 0
  reconnect()
})
socket.on('connect_error', (err: Error) => {
  if (flooding) bump(report.connectRefused, err.message)
  // A refusal by the server (it carries data) is answered at once; a transport error (no server) after a pause.
  if (field(err, 'data') !== undefined) reconnect()
  else setTimeout(reconnect, 100)
})
socket.on('sync:error', (e: unknown) => {
  if (!flooding) return
  report.syncErrors++
  if (field(e, 'event') === 'abuse') report.abuseNotices++
})

function stop(): void {
  if (stopping) return
  report.floodSec = flooding ? (performance.now() - floodStart) / 1000 : 0
  const cpu = process.cpuUsage(cpuAtGo)
  report.floodCpuUs = flooding ? cpu.user + cpu.system : 0
  flooding = false
  stopping = true
  report.unansweredAtStop = inflight
  socket.disconnect()
  const total = process.cpuUsage()
  report.totalCpuUs = total.user + total.system
  write(report)
  process.exit(0)
}

const lines = createInterface({ input: process.stdin })
lines.on('line', (line) => {
  const command = line.trim()
  if (command === 'go' && !flooding && !stopping) {
    flooding = true
    floodStart = performance.now()
    refilledAt = floodStart
    cpuAtGo = process.cpuUsage()
    schedule()
  } else if (command === 'stop') stop()
})
lines.on('close', () => process.exit(0))
socket.connect()
