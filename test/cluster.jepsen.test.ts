/**
 * Cluster mode, Jepsen-style set check (issue 14; protocol §§2 and 11): three
 * nodes in child processes share one PostgreSQL schema and Redis. Each of 10
 * cycles, a device of alice connects to some node (the owner, or the one
 * that takes her over once the last owner's lease expired) and sends half a
 * burst of clips, one update each; once some are acknowledged, it sends the
 * other half and the node serving it is killed with SIGKILL in the same turn,
 * updates in flight. It is restarted once another node has taken alice over.
 * The device's unacknowledged clips are abandoned (never resent). At the end
 * a fresh device, on whichever node then owns alice, must hold every clip
 * that was ever acknowledged: lost = 0.
 * Skipped with a message when PostgreSQL or Redis is unreachable (failed under REQUIRE_SERVICES=1).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { useChildServers } from './helpers/child-fixture.js'
import { ClipBurst, connectDevice, missingClips } from './helpers/clip-burst.js'
import { killAllChildren, within, type ChildServer } from './helpers/child-server.js'
import { startClusterNode, type ClusterEnv } from './helpers/cluster.js'
import type { YjsDevice } from './helpers/device.js'
import { createTestSchema, postgresForTests, type TestSchema } from './helpers/postgres.js'
import { redisForTests, TEST_REDIS_URL, testRedisPrefix } from './helpers/redis.js'
import { tokenFor } from './helpers/server.js'

const postgres = await postgresForTests('cluster set check under SIGKILL (issue 14)')
const redis = await redisForTests('cluster set check under SIGKILL (issue 14)')

const CYCLES = 10
const NODES = 3
const LEASE_TTL_MS = 1500
/** Clips per burst: the first half is sent, and once a quarter is acknowledged the second half goes out with the kill. */
const BURST = 60

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.skipIf(!postgres.available || !redis.available)('cluster: every acknowledged write survives its owner being killed', () => {
  const fixture = useChildServers('superclip-cluster-jepsen-')
  let schema: TestSchema | undefined
  afterEach(async () => {
    // This hook runs before the fixture's: the nodes go first, then their schema.
    await killAllChildren()
    await schema?.drop()
    schema = undefined
  })

  /** A synced device of alice on the first node (from `start`, in turn) that serves her: the owner, or a node taking her over. */
  async function onOwner(nodes: ChildServer[], start: number, deviceId: string): Promise<{ device: YjsDevice; node: number }> {
    const token = await tokenFor('alice')
    return within(
      (async () => {
        for (let attempt = 0; ; attempt++) {
          const node = (start + attempt) % nodes.length
          try {
            return { device: await connectDevice(nodes[node]!.url, token, deviceId), node }
          } catch {
            // `moved` (another node owns alice, or a dead owner's lease has not expired yet) or a node restarting.
            await sleep(100)
          }
        }
      })(),
      LEASE_TTL_MS + 20_000,
      `a node to serve alice (${deviceId})`,
    )
  }

  it(`${CYCLES} cycles of SIGKILL mid-burst across ${NODES} nodes: lost = 0`, async () => {
    schema = await createTestSchema()
    const env: ClusterEnv = { dataDir: fixture.dataDir, databaseUrl: schema.url, redisUrl: TEST_REDIS_URL, redisKeyPrefix: testRedisPrefix(), leaseTtlMs: LEASE_TTL_MS }
    const nodes = [await startClusterNode(env, 'node-0')]
    for (let i = 1; i < NODES; i++) nodes.push(await startClusterNode(env, `node-${i}`))
    const acked: string[] = []
    const servedBy: number[] = []
    let sent = 0
    /** Cycles whose kill left clips of the burst unacknowledged: the kill came with updates in flight. */
    let killedMidBurst = 0
    /** The node killed last cycle: restarted only once another node serves alice, so every cycle moves her. */
    let down: number | undefined
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const { device, node } = await onOwner(nodes, cycle, `writer-${cycle}`)
      servedBy.push(node)
      if (down !== undefined) nodes[down] = await startClusterNode(env, `node-${down}`, {}, nodes[down]!.port)
      const burst = new ClipBurst(`cycle${cycle}`, BURST)
      // Half the burst; once a quarter is acknowledged, the other half is sent and the node killed in the
      // same turn: a group commit may be mid-write and the second half is certainly in flight.
      const firstAcks = burst.send(device, 0, BURST / 2)
      await within(Promise.all(firstAcks.slice(0, BURST / 4)), 20_000, `${BURST / 4} acks in cycle ${cycle}`)
      void burst.send(device, BURST / 2) // their acks are awaited in burst.settled() below
      sent += burst.sent
      const victim = nodes[node]!
      victim.kill('SIGKILL')
      await victim.waitForExit()
      down = node
      await burst.settled()
      device.close()
      acked.push(...burst.acked())
      if (burst.acked().length < burst.sent) killedMidBurst++
      expect(burst.refused(), `cycle ${cycle}: no refusal before the kill`).toEqual([])
    }
    const { device: reader } = await onOwner(nodes, 0, 'reader')
    const lost = missingClips(reader, acked)
    console.log(`cluster set check: ${CYCLES} cycles (${killedMidBurst} killed mid-burst), served by nodes ${servedBy.join(',')}; sent ${sent}, acked ${acked.length}, lost ${lost.length}, held ${reader.clips().size}`)
    expect(killedMidBurst, 'kills that landed with updates in flight').toBeGreaterThan(0)
    // With its owner dead, alice is taken over by another node once the lease expired, every cycle.
    expect(servedBy.every((n, i) => i === 0 || n !== servedBy[i - 1]), `alice moved every cycle: ${servedBy.join(',')}`).toBe(true)
    expect(lost).toEqual([])
    reader.close()
    // Ten node restarts and lease takeovers: 30-52 s on a quiet 2-core machine, more on a busy one.
  }, 180_000)
})
