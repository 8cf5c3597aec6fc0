/**
 * Graceful shutdown of the real server process (src/index.ts): on SIGTERM or
 * SIGINT it refuses new updates, finishes and acknowledges the ones in flight,
 * disconnects, closes LevelDB and exits 0. Signalled in the middle of a burst of updates from two users, it
 * must exit 0, and after a restart every acknowledged update is there.
 */
import { RESTART_RETRY_MS } from '../src/utils/retry.js'
import { describe, expect, it } from 'vitest'
import { useChildServers } from './helpers/child-fixture.js'
import { ClipBurst, missingClips } from './helpers/clip-burst.js'
import { errorLogs, getHealth, startChildServer } from './helpers/child-server.js'
import type { YjsDevice } from './helpers/device.js'

const CLIPS_PER_USER = 300
const USERS = ['alice', 'bob'] as const

describe('graceful shutdown of the server process', () => {
  const fixture = useChildServers('superclip-shutdown-')
  const { device, closeDevices } = fixture

  it('GET /health answers 200 { status: "ok" }', async () => {
    const server = await startChildServer({ dataDir: fixture.dataDir })
    expect(await getHealth(server.url)).toMatchObject({ status: 200, body: { status: 'ok', nodeId: expect.any(String), store: { kind: 'leveldb', reachable: true } } })
    server.kill('SIGTERM')
    expect(await server.waitForExit()).toEqual({ code: 0, signal: null })
  })

  it.each(['SIGTERM', 'SIGINT'] as const)(
    '%s during a burst: exit code 0, and every acknowledged update is there after a restart',
    async (signal) => {
      const server = await startChildServer({ dataDir: fixture.dataDir })
      const bursts = new Map<string, ClipBurst>()
      const writers: { writer: YjsDevice; burst: ClipBurst }[] = []
      for (const userId of USERS) {
        const burst = new ClipBurst(`${userId}-clip`, CLIPS_PER_USER)
        bursts.set(userId, burst)
        writers.push({ writer: await device(server, userId, `${userId}-writer`), burst })
      }
      // A first third of each burst; once half of alice's is acknowledged, the other two thirds go out
      // and the signal follows in the same turn: updates are queued, being written, and in flight.
      const third = CLIPS_PER_USER / 3
      const firstAcks = writers.map(({ writer, burst }) => burst.send(writer, 0, third))
      await firstAcks[0]?.[third / 2 - 1]
      for (const { writer, burst } of writers) void burst.send(writer, third)
      server.kill(signal)

      const exit = await server.waitForExit()
      expect(exit, `stderr:\n${server.stderr()}`).toEqual({ code: 0, signal: null })
      expect(server.stdout()).toContain(`"signal":"${signal}"`)
      // A clean shutdown: nothing logged at error level or above, nothing on stderr but warnings.
      expect(errorLogs(server)).toEqual([])
      expect(server.stderr()).not.toMatch(/error/i)
      for (const burst of bursts.values()) {
        await burst.settled()
        // Whatever was refused (updates that arrived once the shutdown had begun) was refused as the shutdown.
        for (const refusal of burst.refused()) {
          expect(refusal).toEqual({ code: 'UNAVAILABLE', message: expect.stringMatching(/shutting down/), retryAfterMs: expect.any(Number) })
          // The restart's wait, jittered.
          expect((refusal as { retryAfterMs: number }).retryAfterMs).toBeGreaterThanOrEqual(RESTART_RETRY_MS)
          expect((refusal as { retryAfterMs: number }).retryAfterMs).toBeLessThanOrEqual(2 * RESTART_RETRY_MS + 1)
        }
      }
      closeDevices()

      const restarted = await startChildServer({ dataDir: fixture.dataDir })
      expect(await getHealth(restarted.url)).toMatchObject({ status: 200, body: { status: 'ok', nodeId: expect.any(String), store: { kind: 'leveldb', reachable: true } } })
      let acked = 0
      let unackedPresent = 0
      const missing = new Map<string, string[]>()
      const foreign = new Map<string, string[]>()
      for (const [userId, burst] of bursts) {
        const fresh = await device(restarted, userId, `${userId}-check`)
        const ackedIds = burst.acked()
        const unacked = burst.ids.filter((id) => !ackedIds.includes(id))
        acked += ackedIds.length
        unackedPresent += unacked.length - missingClips(fresh, unacked).length
        missing.set(userId, missingClips(fresh, ackedIds))
        // Only this user's clips, none of the other's.
        foreign.set(userId, [...fresh.clips().keys()].filter((id) => !id.startsWith(`${userId}-clip-`)))
      }
      const sent = [...bursts.values()].reduce((n, b) => n + b.sent, 0)
      const lost = [...missing.values()].reduce((n, ids) => n + ids.length, 0)
      console.log(
        `[shutdown ${signal}] sent ${sent}, acked ${acked}, present ${acked - lost}, lost ${lost}` +
          ` (unacked but stored: ${unackedPresent})`,
      )
      expect(Object.fromEntries(missing), `acknowledged clips missing after ${signal} and restart`).toEqual({
        alice: [],
        bob: [],
      })
      expect(Object.fromEntries(foreign)).toEqual({ alice: [], bob: [] })
      // The server drains before it disconnects: every update it stored was also acknowledged.
      expect(unackedPresent).toBe(0)
      // The signal came no earlier than alice's (third / 2)-th ack, and everything was sent before it.
      expect(bursts.get('alice')?.acked().length).toBeGreaterThanOrEqual(third / 2)
      expect(sent).toBe(CLIPS_PER_USER * USERS.length)
    },
  )
})
