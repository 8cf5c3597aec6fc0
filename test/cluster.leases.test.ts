/**
 * Cluster mode (issue 14, item 2; protocol §11): one owner per user through a
 * lease in PostgreSQL with a fencing epoch. Real server processes sharing one
 * fresh schema (DATABASE_URL + REDIS_URL + PUBLIC_URL):
 * - a device of a user owned by another node is refused `moved` with the
 *   owner's URL, and an SDK client given the wrong node ends synced on the owner;
 * - split brain: an owner paused (SIGSTOP) past its lease loses the user to
 *   another node; resumed, none of its writes reaches the database, its socket
 *   of that user is closed, and the document holds every acknowledged update;
 * - a dead owner (SIGKILL): after the TTL another node takes the user over with
 *   every acknowledged write.
 * Skipped with a message when PostgreSQL is unreachable (failed under REQUIRE_SERVICES=1).
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { io as connectSocket } from 'socket.io-client'
import * as Y from 'yjs'
import { useChildServers } from './helpers/child-fixture.js'
import { getHealth, killAllChildren, within, type ChildServer } from './helpers/child-server.js'
import { startClusterNode } from './helpers/cluster.js'
import { redisForTests, TEST_REDIS_URL, testRedisPrefix } from './helpers/redis.js'
import type { Reply, YjsDevice } from './helpers/device.js'
import { waitFor } from './helpers/device.js'
import { createTestSchema, postgresForTests, type TestSchema } from './helpers/postgres.js'
import { allSynced, useClients } from './helpers/sdk.js'
import { tokenFor } from './helpers/server.js'
import { parseEnv } from '../src/config.js'
import type { DocumentWrite } from '../src/repositories/document.repository.js'
import { FENCE_SQLSTATE, LeaseLostError, PostgresLeases } from '../src/repositories/postgres-leases.js'
import { connectionConfig, openPostgresStore, PostgresDocumentRepository, type PostgresStore } from '../src/repositories/postgres.repository.js'

const postgres = await postgresForTests('cluster leases and fencing (issue 14, item 2)')
const redis = await redisForTests('cluster leases and fencing (issue 14, item 2)')

const REDIS_URL = TEST_REDIS_URL
const LEASE_TTL_MS = 1500

interface Refusal {
  message: string
  data?: { code?: string; message?: string; url?: string }
}

/** The `connect_error` a fresh socket of `userId` gets from `url` (or 'connected'). */
async function handshake(url: string, userId: string, deviceId: string): Promise<Refusal | 'connected'> {
  const socket = connectSocket(url, { auth: { token: await tokenFor(userId), deviceId }, transports: ['websocket'], reconnection: false })
  try {
    return await within(
      new Promise<Refusal | 'connected'>((resolve) => {
        socket.once('connect', () => resolve('connected'))
        socket.once('connect_error', (e: Error & { data?: Refusal['data'] }) => resolve({ message: e.message, data: e.data }))
      }),
      10_000,
      `the handshake of ${deviceId} at ${url}`,
    )
  } finally {
    socket.close()
  }
}

/** A device's update ack, or 'none' if none came within `ms` (a closed socket never gets it). */
async function ackWithin(ack: Promise<Reply> | undefined, ms: number): Promise<Reply | 'none'> {
  if (!ack) return 'none'
  let timer: NodeJS.Timeout | undefined
  const none = new Promise<'none'>((resolve) => (timer = setTimeout(() => resolve('none'), ms)))
  try {
    return await Promise.race([ack.catch(() => 'none' as const), none])
  } finally {
    clearTimeout(timer)
  }
}

/** Adds a clip as the app does; returns its update's ack. */
function addClip(device: YjsDevice, id: string): Promise<Reply> | undefined {
  return device.write(() => {
    const clip = new Y.Map<unknown>()
    clip.set('content', `content of ${id}`)
    device.clips().set(id, clip)
  })
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.skipIf(!postgres.available || !redis.available)('cluster: one owner per user, fenced by a lease epoch', () => {
  const fixture = useChildServers('superclip-cluster-')
  const { device } = fixture
  const c = useClients()
  let schema: TestSchema | undefined
  afterEach(async () => {
    // This hook runs before the fixture's: the nodes go first, then their schema.
    await killAllChildren()
    await schema?.drop()
    schema = undefined
  })

  let prefix = testRedisPrefix()
  afterEach(() => {
    prefix = testRedisPrefix()
  })
  const node = (nodeId: string): Promise<ChildServer> =>
    startClusterNode({ dataDir: fixture.dataDir, databaseUrl: schema!.url, redisUrl: REDIS_URL, redisKeyPrefix: prefix, leaseTtlMs: LEASE_TTL_MS }, nodeId)
  /** Nodes A and B on a fresh schema. */
  async function twoNodes(): Promise<[ChildServer, ChildServer]> {
    schema = await createTestSchema()
    // One after the other: the first generates the data dir's secrets, which the second reads.
    const a = await node('node-a')
    return [a, await node('node-b')]
  }

  async function lease(userId: string): Promise<{ node_id: string; epoch: string; public_url: string } | undefined> {
    const { rows } = await schema!.admin.query<{ node_id: string; epoch: string; public_url: string }>(
      `SELECT node_id, epoch, public_url FROM ${schema!.name}.leases WHERE doc_id = $1`,
      [userId],
    )
    return rows[0]
  }

  it('refuses a device on a node that does not own its user with `moved` and the owner\'s URL; the SDK ends on the owner', async () => {
    const [a, b] = await twoNodes()
    const phone = await device(a, 'alice', 'phone')
    void addClip(phone, 'first')
    await phone.flushed()
    expect(await lease('alice')).toMatchObject({ node_id: 'node-a', public_url: a.url })
    // The owner says who it is and what it owns.
    expect(await getHealth(a.url)).toMatchObject({
      status: 200,
      body: { status: 'ok', nodeId: 'node-a', store: { kind: 'postgresql', reachable: true }, redis: { reachable: true } },
    })
    const adminToken = (await readFile(path.join(fixture.dataDir, 'admin-token'), 'utf8')).trim()
    const metricsOf = async (url: string) => (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } })).text()
    expect(await metricsOf(a.url)).toMatch(/^superclip_owned_users 1$/m)
    expect(await metricsOf(b.url)).toMatch(/^superclip_owned_users 0$/m)
    let renewals = ''
    for (const deadline = Date.now() + 10_000; Date.now() < deadline && !/^superclip_lease_renewals_total [1-9]/m.test(renewals); ) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      renewals = await metricsOf(a.url)
    }
    expect(renewals).toMatch(/^superclip_lease_renewals_total [1-9]\d*$/m)
    expect(renewals).toMatch(/^superclip_lease_losses_total 0$/m)

    const refusal = await handshake(b.url, 'alice', 'laptop')
    expect(refusal).toEqual({ message: 'moved', data: { code: 'MOVED', message: expect.any(String), url: a.url } })
    // Another user is free: node B takes it.
    expect(await handshake(b.url, 'bob', 'phone')).toBe('connected')

    const sdk = c.client({ url: b.url, token: await tokenFor('alice'), deviceId: 'tablet' })
    sdk.clips.create({ content: 'from the SDK' })
    await allSynced([sdk], 20_000)
    expect(sdk.url).toBe(a.url)
    expect(sdk.clips.list().map((x) => x.content).sort()).toEqual(['content of first', 'from the SDK'].sort())
    await waitFor(() => phone.clips().size === 2, 'the phone to get the SDK clip')
  })

  it('split brain: a paused owner that lost its lease never writes again, and its socket of the user is closed', async () => {
    const [a, b] = await twoNodes()
    const phone = await device(a, 'alice', 'phone')
    await addClip(phone, 'before-pause')
    await phone.flushed()
    expect(await lease('alice')).toMatchObject({ node_id: 'node-a', epoch: '1' })

    let stale: Promise<Reply> | undefined
    a.kill('SIGSTOP')
    try {
      await sleep(LEASE_TTL_MS + 1000)
      // Node B takes the user over: a device connects there and writes, acknowledged.
      const laptop = await device(b, 'alice', 'laptop')
      expect(laptop.clips().get('before-pause')).toBeDefined()
      const taken = await ackWithin(addClip(laptop, 'on-b'), 10_000)
      expect(taken).toMatchObject({ ok: true })
      expect(await lease('alice')).toMatchObject({ node_id: 'node-b', epoch: '2' })
      // The phone, still connected to the paused node A, writes: it waits in A's socket buffer.
      expect(phone.socket.connected).toBe(true)
      stale = addClip(phone, 'stale-on-a')
      expect(stale).toBeDefined()
    } finally {
      a.kill('SIGCONT')
    }
    // Resumed, node A finds its lease lost (its renewal or its write's fence): the write is never
    // acknowledged and its socket of alice is closed.
    const reply = await ackWithin(stale, 10_000)
    expect(reply === 'none' || reply.ok === false).toBe(true)
    await waitFor(() => !phone.socket.connected, 'node A to close the phone socket', 10_000)
    await sleep(1000)
    // Nothing of A's after the takeover is stored: the log holds no entry with the stale clip, and a
    // fresh device (on the owner, B) holds exactly the acknowledged clips.
    const { rows } = await schema!.admin.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${schema!.name}.log_entries WHERE doc_id = 'alice' AND position('stale-on-a'::bytea in data) > 0`,
    )
    expect(rows[0]?.n).toBe('0')
    const tablet = await device(b, 'alice', 'tablet')
    expect([...tablet.clips().keys()].sort()).toEqual(['before-pause', 'on-b'])
    // And A refuses alice from now on, sending her to B.
    expect(await handshake(a.url, 'alice', 'phone')).toMatchObject({ message: 'moved', data: { code: 'MOVED', url: b.url } })
    expect(a.hasExited).toBe(false)
  })

  it('a dead owner: after the TTL the next connection on another node takes the user over with every acknowledged write', async () => {
    const [a, b] = await twoNodes()
    const phone = await device(a, 'alice', 'phone')
    const ids = Array.from({ length: 20 }, (_, i) => `clip-${i}`)
    for (const id of ids) void addClip(phone, id)
    await phone.flushed()
    a.kill('SIGKILL')
    await a.waitForExit()
    const killedAt = Date.now()
    // Until the lease expires, B sends alice to the dead owner (it cannot know it is dead).
    const early = await handshake(b.url, 'alice', 'laptop')
    expect(Date.now() - killedAt, 'the handshake came before the lease expired').toBeLessThan(LEASE_TTL_MS - 200)
    expect(early).toMatchObject({ message: 'moved', data: { url: a.url } })
    let laptop: YjsDevice | undefined
    await within(
      (async () => {
        for (;;) {
          try {
            laptop = await device(b, 'alice', 'laptop')
            return
          } catch {
            await sleep(200)
          }
        }
      })(),
      LEASE_TTL_MS + 10_000,
      'node B to take alice over',
    )
    expect(Date.now() - killedAt).toBeGreaterThanOrEqual(LEASE_TTL_MS - 500)
    expect([...laptop!.clips().keys()].sort()).toEqual([...ids].sort())
    expect(await lease('alice')).toMatchObject({ node_id: 'node-b', epoch: '2' })
  })
})

describe('cluster configuration', () => {
  it('REDIS_URL needs DATABASE_URL; PUBLIC_URL defaults to http://HOST:PORT and NODE_ID to a random id per start', () => {
    expect(() => parseEnv({ REDIS_URL: REDIS_URL })).toThrow(/REDIS_URL: needs DATABASE_URL/)
    expect(() => parseEnv({ DATABASE_URL: 'postgres://h/db', REDIS_URL: 'http://x' })).toThrow(/REDIS_URL/)
    const one = parseEnv({ DATABASE_URL: 'postgres://h/db', REDIS_URL, HOST: '10.0.0.5', PORT: '9000' })
    expect(one).toMatchObject({ redisUrl: REDIS_URL, publicUrl: 'http://10.0.0.5:9000', leaseTtlMs: 10_000 })
    expect(parseEnv({}).nodeId).not.toBe(one.nodeId)
    expect(parseEnv({ PUBLIC_URL: 'https://sync-3.example.com/', NODE_ID: 'sync-3' })).toMatchObject({ publicUrl: 'https://sync-3.example.com', nodeId: 'sync-3' })
    expect(() => parseEnv({ PUBLIC_URL: 'sync-3.example.com' })).toThrow(/PUBLIC_URL/)
  })
})

describe.skipIf(!postgres.available)('lease SQL (take, renew, release, fence) on one schema', () => {
  let schema: TestSchema | undefined
  const stores: PostgresStore[] = []
  const pools: pg.Pool[] = []
  afterEach(async () => {
    await Promise.all(stores.splice(0).map((s) => s.close()))
    await Promise.all(pools.splice(0).map((p) => p.end()))
    await schema?.drop()
    schema = undefined
  })

  const write = (docId: string, seq: number, text: string): DocumentWrite => ({
    docId,
    append: { firstSeq: seq, updates: [new TextEncoder().encode(text)] },
    clock: seq + 1,
    entities: [],
    conflicts: [],
    changes: [],
    devices: [],
  })

  const ttl = 300

  /**
   * Node B, a cluster store on a fresh schema, and node A's repository and
   * leases without A's renewal timer: a node paused past its TTL, its memory
   * still saying it holds what it took.
   */
  async function nodesAB() {
    schema = await createTestSchema()
    const b = await openPostgresStore(schema.url, undefined, { cluster: { nodeId: 'b', publicUrl: 'http://b', leaseTtlMs: ttl } })
    stores.push(b)
    const pool = new pg.Pool(connectionConfig(schema.url))
    pools.push(pool)
    const leasesA = new PostgresLeases(pool, { nodeId: 'a', publicUrl: 'http://a', leaseTtlMs: ttl })
    return { b, leasesA, repoA: new PostgresDocumentRepository(pool, leasesA), schema }
  }

  it('a node whose lease was taken over cannot write: the statement fails whole, nothing stored; epochs only grow', async () => {
    const { b, leasesA, repoA, schema } = await nodesAB()

    await expect(repoA.write([write('alice', 0, 'no lease')])).rejects.toBeInstanceOf(LeaseLostError)
    await leasesA.take('alice')
    await repoA.write([write('alice', 0, 'a-1')])
    await expect(b.leases!.take('alice')).rejects.toMatchObject({ name: 'LeaseHeldError', url: 'http://a', nodeId: 'a' })
    await new Promise((resolve) => setTimeout(resolve, ttl + 100))
    await b.leases!.take('alice')
    expect(leasesA.holds('alice')).toBe(true) // it does not know yet
    // A's write of two documents (alice lost, carol held) fails whole: the fence is in the same statement.
    await leasesA.take('carol')
    const fenced = repoA.write([write('alice', 1, 'a-2 stale'), write('carol', 0, 'c-1')])
    // A batch over one statement's budget (BEGIN, several statements, COMMIT) is fenced as well.
    // (Sent in the same turn: both carry the epoch A still believes in, so PostgreSQL's fence judges both.)
    const big: DocumentWrite = { ...write('alice', 1, 'x'), append: { firstSeq: 1, updates: Array.from({ length: 6000 }, () => new Uint8Array([1])) } }
    const fencedBig = repoA.write([big])
    await expect(fenced).rejects.toBeInstanceOf(LeaseLostError)
    await expect(fenced).rejects.toMatchObject({ cause: { code: FENCE_SQLSTATE } })
    await expect(fencedBig).rejects.toMatchObject({ name: 'LeaseLostError', cause: { code: FENCE_SQLSTATE } })
    const stored = await b.repo.read('alice')
    expect(stored.log.updates.map((u) => new TextDecoder().decode(u))).toEqual(['a-1'])
    expect((await b.repo.read('carol')).log.updates).toEqual([])
    // The fence's failure made A renew at once: the lost lease is gone from its memory.
    await waitFor(() => !leasesA.holds('alice'), 'node A to find its lease lost', 2000)
    await b.repo.write([write('alice', 1, 'b-1')])
    // A release keeps the row and its epoch: the next take goes on counting.
    await b.leases!.release('alice')
    await leasesA.take('alice')
    const { rows } = await schema.admin.query<{ node_id: string; epoch: string }>(`SELECT node_id, epoch FROM ${schema.name}.leases WHERE doc_id = 'alice'`)
    expect(rows).toEqual([{ node_id: 'a', epoch: '3' }])
    await leasesA.releaseAll()
  })

  it('an erasure by a node that lost the lease erases nothing', async () => {
    const { b, leasesA, repoA } = await nodesAB()
    await leasesA.take('alice')
    await repoA.write([write('alice', 0, 'a-1')])
    await new Promise((resolve) => setTimeout(resolve, ttl + 100))
    await b.leases!.take('alice')
    await b.repo.write([write('alice', 1, 'b-1')])
    await expect(repoA.erase('alice')).rejects.toMatchObject({ name: 'LeaseLostError', cause: { code: FENCE_SQLSTATE } })
    expect((await b.repo.read('alice')).log.updates.map((u) => new TextDecoder().decode(u))).toEqual(['a-1', 'b-1'])
    // The holder erases.
    await b.repo.erase('alice')
    expect(await b.repo.exists('alice')).toBe(false)
    await leasesA.releaseAll()
  })
})
