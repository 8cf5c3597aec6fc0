/**
 * Cluster mode across nodes (issue 14, items 3 and 4; protocol §11): three
 * real server processes sharing one fresh PostgreSQL schema and joined by
 * Redis (the Socket.IO Redis adapter, a key prefix of the test's own):
 * - users spread over the nodes, each user on its owner; SDK devices of one
 *   user given different nodes end on the owner (following `moved`) and
 *   converge;
 * - admin routes work on any node: device lists and disconnects reach the
 *   owner's sockets, and a route that needs the document (or its lease: an
 *   erasure) is answered by the owner (forwarded through the cluster);
 * - HTTP sync on a node that does not own the user answers 307 to the owner;
 * - a node that loses Redis says so in /health and refuses writes with
 *   UNAVAILABLE and a retry hint, and takes them again once Redis is back.
 * Skipped with a message when PostgreSQL or Redis is unreachable (failed under REQUIRE_SERVICES=1).
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { AdminClient } from './helpers/admin-client.js'
import { useChildServers } from './helpers/child-fixture.js'
import { getHealth, killAllChildren, type ChildServer } from './helpers/child-server.js'
import { startClusterNode } from './helpers/cluster.js'
import { waitFor, type Reply, type YjsDevice } from './helpers/device.js'
import { createTestSchema, postgresForTests, type TestSchema } from './helpers/postgres.js'
import { redisForTests, TEST_REDIS_URL, testRedisPrefix } from './helpers/redis.js'
import { allSynced, useClients } from './helpers/sdk.js'
import { tokenFor } from './helpers/server.js'
import { TcpProxy } from './helpers/tcp-proxy.js'

const postgres = await postgresForTests('cluster across nodes (issue 14)')
const redis = await redisForTests('cluster across nodes (issue 14)')

const LEASE_TTL_MS = 3000

function addClip(device: YjsDevice, id: string): Promise<Reply> | undefined {
  return device.write(() => {
    const clip = new Y.Map<unknown>()
    clip.set('content', `content of ${id}`)
    device.clips().set(id, clip)
  })
}

describe.skipIf(!postgres.available || !redis.available)('cluster: three nodes joined by Redis', () => {
  const fixture = useChildServers('superclip-cluster-redis-')
  const { device } = fixture
  const sdk = useClients()
  let schema: TestSchema | undefined
  const proxies: TcpProxy[] = []
  afterEach(async () => {
    // This hook runs before the fixture's: the nodes go first, then their proxies and schema.
    await killAllChildren()
    await Promise.all(proxies.splice(0).map((p) => p.close()))
    await schema?.drop()
    schema = undefined
  })

  async function cluster(n: number, redisUrl = TEST_REDIS_URL): Promise<ChildServer[]> {
    schema = await createTestSchema()
    const env = { dataDir: fixture.dataDir, databaseUrl: schema.url, redisUrl, redisKeyPrefix: testRedisPrefix(), leaseTtlMs: LEASE_TTL_MS }
    // One first: it generates the data dir's secrets, which the others then read.
    const first = await startClusterNode(env, 'node-0')
    const rest = await Promise.all(Array.from({ length: n - 1 }, (_, i) => startClusterNode(env, `node-${i + 1}`)))
    return [first, ...rest]
  }

  const adminOf = async (node: ChildServer) => new AdminClient(node.url, (await readFile(path.join(fixture.dataDir, 'admin-token'), 'utf8')).trim())

  it('spreads users over the nodes; admin routes on any node reach the owner; HTTP sync elsewhere is sent there with 307', async () => {
    const [a, b, c] = (await cluster(3)) as [ChildServer, ChildServer, ChildServer]
    for (const node of [a, b, c]) expect(await getHealth(node.url)).toMatchObject({ status: 200, body: { status: 'ok', redis: { reachable: true } } })
    // Each user on the node its first device reached.
    const alicePhone = await device(a, 'alice', 'phone')
    const bobPhone = await device(b, 'bob', 'phone')
    const carolPhone = await device(c, 'carol', 'phone')
    for (const [d, id] of [[alicePhone, 'a1'], [bobPhone, 'b1'], [carolPhone, 'c1']] as const) {
      expect(await addClip(d, id)).toMatchObject({ ok: true })
    }
    const { rows } = await schema!.admin.query<{ doc_id: string; node_id: string }>(`SELECT doc_id, node_id FROM ${schema!.name}.leases ORDER BY doc_id`)
    expect(rows).toEqual([
      { doc_id: 'alice', node_id: 'node-0' },
      { doc_id: 'bob', node_id: 'node-1' },
      { doc_id: 'carol', node_id: 'node-2' },
    ])

    // Node B sees alice's phone, connected to A, and closes it.
    const adminB = await adminOf(b)
    const devices = await adminB.get<{ devices: { deviceId: string; connected: boolean }[] }>('/admin/users/alice/devices')
    expect(devices.status).toBe(200)
    expect(devices.body.devices).toEqual([expect.objectContaining({ deviceId: 'phone', connected: true })])
    expect((await adminB.get<{ devicesConnected: number }>('/admin/users/alice')).body.devicesConnected).toBe(1)

    // A route that needs the document: node C asks the owner, A, and replays its answer.
    const adminC = await adminOf(c)
    const doc = await adminC.get<{ clips: Record<string, unknown> }>('/admin/users/alice/document')
    expect(doc.status).toBe(200)
    expect(Object.keys(doc.body.clips)).toEqual(['a1'])
    const snapshot = await adminC.post<{ id: string }>('/admin/users/alice/snapshots', { label: 'from node C' })
    expect(snapshot.status).toBe(201)
    expect(snapshot.body).toMatchObject({ userId: 'alice', label: 'from node C', entityCounts: { clip: 1 } })
    // Still owned by A: nothing moved to C.
    expect((await schema!.admin.query(`SELECT node_id FROM ${schema!.name}.leases WHERE doc_id = 'alice'`)).rows).toEqual([{ node_id: 'node-0' }])

    // HTTP sync of alice on B: 307 to A, same path and query.
    const token = await tokenFor('alice')
    const moved = await fetch(`${b.url}/v1/sync/changes?deviceId=web`, { headers: { authorization: `Bearer ${token}` }, redirect: 'manual' })
    expect(moved.status).toBe(307)
    expect(moved.headers.get('location')).toBe(`${a.url}/v1/sync/changes?deviceId=web`)
    expect(await moved.json()).toEqual({ error: { code: 'MOVED', message: expect.any(String), url: a.url } })
    const there = await fetch(moved.headers.get('location')!, { headers: { authorization: `Bearer ${token}` } })
    expect(there.status).toBe(200)

    const disconnected = await adminB.post(`/admin/users/alice/devices/phone/disconnect`)
    expect(disconnected.status).toBe(204)
    await waitFor(() => !alicePhone.socket.connected, "alice's phone closed by node B's request", 10_000)
    expect(bobPhone.socket.connected && carolPhone.socket.connected).toBe(true)

    // Erasing bob (owned by B) from A: B closes his socket and erases under his lease.
    const adminA = await adminOf(a)
    expect((await adminA.delete('/admin/users/bob')).status).toBe(204)
    await waitFor(() => !bobPhone.socket.connected, "bob's phone closed by the erasure", 10_000)
    expect((await adminA.get('/admin/users/bob')).status).toBe(404)
    expect((await schema!.admin.query(`SELECT count(*)::int AS n FROM ${schema!.name}.log_entries WHERE doc_id = 'bob'`)).rows).toEqual([{ n: 0 }])
    // Nothing of bob's comes back from a copy B still held in memory.
    const bobTablet = await device(b, 'bob', 'tablet')
    expect(bobTablet.clips().size).toBe(0)
  })

  it("one user's devices given three different nodes all end on the owner and converge", async () => {
    const nodes = await cluster(3)
    const token = await tokenFor('alice')
    const clients = nodes.map((node, i) => sdk.client({ url: node.url, token, deviceId: `device-${i}` }))
    for (const [i, c] of clients.entries()) for (let n = 0; n < 5; n++) c.clips.create({ content: `clip ${n} of device ${i}` })
    await allSynced(clients, 30_000)
    const { rows } = await schema!.admin.query<{ public_url: string }>(`SELECT public_url FROM ${schema!.name}.leases WHERE doc_id = 'alice'`)
    const owner = rows[0]?.public_url
    expect(nodes.map((n) => n.url)).toContain(owner)
    expect(clients.map((c) => c.url)).toEqual([owner, owner, owner])
    // Each has every device's clips once live on the owner (relays after its sync).
    const want = clients.flatMap((_, i) => Array.from({ length: 5 }, (_, n) => `clip ${n} of device ${i}`)).sort()
    await waitFor(() => clients.every((c) => c.clips.list().length === want.length), 'every device to hold all 15 clips', 15_000)
    for (const c of clients) expect(c.clips.list().map((x) => x.content).sort()).toEqual(want)
  })

  it('an admin request for a user whose owner does not answer (paused) is refused UNAVAILABLE with a retry hint', async () => {
    const [a, b] = (await cluster(2)) as [ChildServer, ChildServer]
    const phone = await device(a, 'alice', 'phone')
    expect(await addClip(phone, 'a1')).toMatchObject({ ok: true })
    const adminB = await adminOf(b)
    a.kill('SIGSTOP')
    try {
      const reply = await adminB.get('/admin/users/alice/document')
      expect(reply).toMatchObject({ status: 503, body: { error: { code: 'UNAVAILABLE', retryAfterMs: expect.any(Number) } } })
    } finally {
      a.kill('SIGCONT')
    }
  })

  it('a node that loses Redis refuses writes with UNAVAILABLE and a retry hint, and takes them again once it is back', async () => {
    const target = new URL(TEST_REDIS_URL)
    const proxy = await TcpProxy.start({ targetPort: Number(target.port || 6379) })
    proxies.push(proxy)
    const [a] = (await cluster(1, `redis://127.0.0.1:${proxy.port}`)) as [ChildServer]
    const phone = await device(a, 'alice', 'phone')
    expect(await addClip(phone, 'before')).toMatchObject({ ok: true })

    proxy.refuse()
    let health = await getHealth(a.url)
    for (const deadline = Date.now() + 10_000; health.status === 200 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      health = await getHealth(a.url)
    }
    expect(health).toMatchObject({ status: 503, body: { status: 'unavailable', store: { reachable: true }, redis: { reachable: false } } })
    const refused = await addClip(phone, 'during')
    expect(refused).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE', retryAfterMs: expect.any(Number) } })

    proxy.admit()
    for (const deadline = Date.now() + 15_000; health.status !== 200 && Date.now() < deadline; ) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      health = await getHealth(a.url)
    }
    expect(health).toMatchObject({ status: 200, body: { redis: { reachable: true } } })
    // (The phone's refused update stays on the phone: its next write would lack it. A device syncs again, as the SDK does.)
    const laptop = await device(a, 'alice', 'laptop')
    expect(await addClip(laptop, 'after')).toMatchObject({ ok: true })
    expect([...laptop.clips().keys()].sort()).toEqual(['after', 'before'])
  })
})
