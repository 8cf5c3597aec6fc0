/**
 * PostgreSQL unreachable for a while (issue 14, item 4), through a TCP proxy
 * on loopback that cuts every connection and refuses new ones: a write made
 * meanwhile is never acknowledged (no ack without a commit), the server
 * refuses instead of buffering, and once PostgreSQL is back the device's
 * edits are stored and acknowledged without anyone restarting anything.
 * Skipped with a message when PostgreSQL is unreachable (failed under
 * REQUIRE_SERVICES=1).
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { SyncClientError } from '@superclip/sync-client'
import { getHealth } from './helpers/child-server.js'
import { waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { createTestSchema, postgresForTests, withSearchPath, type TestSchema } from './helpers/postgres.js'
import { allSynced, useClients } from './helpers/sdk.js'
import { tempDir, tokenFor } from './helpers/server.js'
import { TcpProxy } from './helpers/tcp-proxy.js'

const postgres = await postgresForTests('PostgreSQL outage (no ack without a commit, recovery)')

describe.skipIf(!postgres.available)('PostgreSQL unreachable for a while', () => {
  const t = useServer()
  const c = useClients()
  let schema: TestSchema | undefined
  let proxy: TcpProxy | undefined
  afterEach(async () => {
    await proxy?.close()
    await schema?.drop()
    proxy = undefined
    schema = undefined
  })

  it('acknowledges nothing while it is away, refuses instead, and stores every edit once it is back', async () => {
    schema = await createTestSchema()
    const target = new URL(schema.url)
    proxy = await TcpProxy.start({ targetPort: Number(target.port || 5432) })
    const viaProxy = new URL(schema.url)
    viaProxy.port = String(proxy.port)
    await t.start(await tempDir(), { databaseUrl: withSearchPath(viaProxy.toString(), schema.name) })
    const token = await tokenFor('alice')
    const device = c.client({ url: t.server.url, token, deviceId: 'phone', backoff: { initialDelayMs: 100, maxDelayMs: 500 } })
    const before = device.clips.create({ content: 'before the outage' })
    await allSynced([device])

    const refusals: SyncClientError[] = []
    device.on('error', (e) => refusals.push(e))
    proxy.refuse()
    const during = device.clips.create({ content: 'during the outage' })
    // The edit reaches the server, whose commit fails: refused, never acknowledged.
    await waitFor(() => refusals.some((e) => e.code === 'UNAVAILABLE'), 'a refusal while PostgreSQL is away')
    expect(device.pendingChanges).toBe(1)
    expect(device.status).not.toBe('synced')
    const health = () => getHealth(t.server.url)
    expect(await health()).toMatchObject({ status: 503, body: { status: 'unavailable', store: { kind: 'postgresql', reachable: false } } })

    proxy.admit()
    expect(await health()).toMatchObject({ status: 200, body: { status: 'ok', store: { kind: 'postgresql', reachable: true } } })
    await allSynced([device], 30_000)
    expect(device.pendingChanges).toBe(0)
    const fresh = c.client({ url: t.server.url, token, deviceId: 'fresh' })
    await allSynced([fresh], 30_000)
    expect(fresh.clips.list().map((x) => x.id).sort()).toEqual([before, during].sort())
  })
})
