/**
 * Relays before durability (issue 13; docs/protocol.md, "Relays"): a Yjs
 * update reaches the user's other Yjs devices once it is applied in memory,
 * while its author's ack still waits for the commit. Change records for JSON
 * devices and conflicts still wait for the commit. An update the server then
 * fails to store is not lost while a device holds it: the failure closes the
 * user's sockets, and the device hands the update back at its next sync.
 * `RELAY_BEFORE_DURABLE=false` keeps relays after the commit.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import * as Y from 'yjs'
import { openStore } from '../src/repositories/level-store.js'
import { LevelDocumentRepository } from '../src/repositories/level.repository.js'
import { createServices } from '../src/services/index.js'
import type { Reply } from './helpers/device.js'
import { waitFor, YjsDevice } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { holdWrites, tempDir, tokenFor } from './helpers/server.js'

/** Tracks whether a promise has settled yet. */
function tracked<T>(promise: Promise<T>): { settled: () => boolean; promise: Promise<T> } {
  let settled = false
  void promise.finally(() => (settled = true))
  return { settled: () => settled, promise }
}

describe('relays before durability', () => {
  const t = useServer()
  afterEach(() => {
    vi.restoreAllMocks()
  })
  const loaded = () => t.server.services.registry.peek('alice')

  /**
   * Alice's clip c1, made by her web device; her phone, offline, writes its
   * content, and so does the web: the phone's next sync raises a conflict on
   * `content` (a manual field). `keepPhoneValue`: the phone's doc keeps
   * deleted content (no `gc`).
   */
  async function offlineConflict(options: { keepPhoneValue?: boolean } = {}): Promise<YjsDevice> {
    const web = await t.jsonDevice('alice', 'web')
    await web.write('create', { entityType: 'clip', entityId: 'c1', data: { content: 'v0' } })
    const phone = await t.device('alice', 'phone')
    if (options.keepPhoneValue) phone.doc.gc = false
    phone.goOffline()
    ;(phone.clips().get('c1') as Y.Map<unknown>).set('content', 'from phone')
    await web.write('update', { entityType: 'clip', entityId: 'c1', data: { content: 'from web' }, version: 1 })
    return phone
  }

  it("reaches the other Yjs devices while the commit is still being written; the ack and the JSON devices' change records wait for it", async () => {
    await t.start()
    const phone = await t.device('alice', 'phone')
    const laptop = await t.device('alice', 'laptop')
    const web = await t.jsonDevice('alice', 'web')

    const held = holdWrites()
    const ack = tracked(phone.write(() => phone.addClip('early', 'before the commit')) as Promise<Reply>)
    await waitFor(() => laptop.clips().has('early'), 'the relay on the laptop')
    await waitFor(() => held.calls() > 0, 'the commit being written')
    await phone.barrier()
    await web.barrier()
    expect(ack.settled()).toBe(false)
    expect(web.live).toEqual([])

    held.release()
    expect(await ack.promise).toEqual(expect.objectContaining({ ok: true }))
    await waitFor(() => web.live.length > 0, "the web device's change record")
    expect(web.live).toEqual([expect.objectContaining({ entityType: 'clip', entityId: 'early', operationType: 'create' })])
    // The relay was sent once: the commit does not relay it again.
    await web.barrier()
    expect(laptop.received).toHaveLength(1)
  })

  it("an update that raises a conflict, and the user's updates after it, are relayed once it is durable, in order", async () => {
    // Its write-back and its conflict record must be stored before any device holds them: after a failed
    // commit, a device resending the update with the write-back would no longer read as a conflict.
    await t.start()
    const phone = await offlineConflict()
    const laptop = await t.device('alice', 'laptop')
    expect(laptop.clips().get('c1')?.get('content')).toBe('from web')
    const before = laptop.received.length
    const laptopBefore = Y.encodeStateAsUpdate(laptop.doc)

    const held = holdWrites()
    await phone.reconnect() // its sync sends the offline write: a conflict on `content` (a manual field)
    phone.addClip('after', 'made after the conflicting write')
    const serverClips = () => t.server.services.registry.peek('alice')?.doc.getMap('clips')
    await waitFor(() => serverClips()?.has('after') === true, 'both updates applied on the server')
    await laptop.barrier()
    expect(laptop.received.slice(before)).toEqual([])

    held.release()
    await phone.flushed()
    await waitFor(() => laptop.clips().has('after'), 'the later update on the laptop')
    const relayed = laptop.received.slice(before)
    // The conflicting update (and a write-back, if Yjs order let the phone's value win), then the later one.
    expect(relayed.map((r) => r.deviceId).join(' ')).toMatch(/^phone (server )*phone$/)
    const replay = new Y.Doc()
    Y.applyUpdate(replay, laptopBefore)
    Y.applyUpdate(replay, (relayed[0] as { update: Uint8Array }).update)
    expect(replay.getMap('clips').has('after')).toBe(false)
    expect(laptop.clips().get('c1')?.get('content')).toBe('from web')
    expect(phone.clips().get('c1')?.get('content')).toBe('from web')
  })

  it("a device that syncs while a conflict's commit is pending gets its diff once that commit settles: after a failed commit it holds no write-back to resend", async () => {
    // Were the write-back handed out from memory, a device resending it with the update after a failed
    // commit would make the update no longer read as a conflict: the phone's value lost without a record.
    await t.start()
    // Should the phone's value lose Yjs's tie-break with the web's, its own doc would collect it once it
    // applies the server's: then its resend below would carry no value at all. Kept, it carries it.
    const phone = await offlineConflict({ keepPhoneValue: true })

    const held = holdWrites()
    const phoneSync = phone.reconnect() // its sync sends the offline write: a conflict on `content` (a manual field)
    await waitFor(() => (loaded()?.conflicts.size ?? 0) > 0 && held.calls() > 0, 'the conflict applied, its commit being written')
    const tablet = t.track(new YjsDevice(t.server.url, await tokenFor('alice'), 'tablet'))
    tablet.socket.connect()
    await tablet.barrier()
    expect(tablet.responses).toEqual([])

    held.fail(Object.assign(new Error('IO error: No space left on device'), { code: 'LEVEL_IO_ERROR' }))
    await waitFor(() => !tablet.socket.connected && !phone.socket.connected, 'the devices disconnected')
    await phoneSync.catch(() => undefined)
    expect(tablet.responses).toEqual([])
    expect(tablet.clips().get('c1')).toBeUndefined()
    vi.restoreAllMocks() // the disk has room again

    // The tablet syncs first and sends what it holds; then the phone resends its offline write: still a conflict.
    await tablet.reconnect()
    await tablet.flushed()
    await phone.reconnect()
    await phone.flushed()
    await waitFor(() => (loaded()?.conflicts.size ?? 0) > 0, 'the conflict recorded again')
    const [conflict] = [...(loaded()?.conflicts.values() ?? [])]
    expect(JSON.stringify(conflict)).toContain('from phone')
    expect(tablet.clips().get('c1')?.get('content')).toBe('from web')
  })

  it("a device that syncs while a conflict's commit is pending gets the stored write-back and the conflict once the commit succeeds", async () => {
    await t.start()
    const phone = await offlineConflict()

    const held = holdWrites()
    const phoneSync = phone.reconnect()
    await waitFor(() => (loaded()?.conflicts.size ?? 0) > 0 && held.calls() > 0, 'the conflict applied, its commit being written')
    const tablet = t.track(new YjsDevice(t.server.url, await tokenFor('alice'), 'tablet'))
    const tabletSynced = tablet.synced()
    tablet.socket.connect()
    await tablet.barrier()
    expect(tablet.responses).toEqual([])

    held.release()
    await tabletSynced
    await phoneSync
    await phone.flushed()
    expect(tablet.responses).toHaveLength(1)
    expect(tablet.clips().get('c1')?.get('content')).toBe('from web')
    await waitFor(() => phone.clips().get('c1')?.get('content') === 'from web', "the server's value back on the phone")
    expect(loaded()?.conflicts.size).toBe(1)
  })

  it("a pause that comes while a resume waits for a conflict's commit is kept: no live updates after it", async () => {
    await t.start()
    const phone = await offlineConflict()
    const laptop = await t.device('alice', 'laptop')
    const tablet = await t.device('alice', 'tablet')
    expect(await laptop.socket.emitWithAck('sync:pause', {})).toEqual({ ok: true })

    const held = holdWrites()
    const phoneSync = phone.reconnect()
    await waitFor(() => (loaded()?.conflicts.size ?? 0) > 0 && held.calls() > 0, 'the conflict applied, its commit being written')
    const resume = tracked(laptop.socket.emitWithAck('sync:resume', {}) as Promise<Reply>)
    // The resume waits for the conflict's commit; the pause comes meanwhile.
    expect(await laptop.socket.emitWithAck('sync:pause', {})).toEqual({ ok: true })
    expect(resume.settled()).toBe(false)
    expect(laptop.responses).toHaveLength(1) // its initial sync's only

    held.release()
    expect(await resume.promise).toMatchObject({ ok: true })
    await phoneSync
    await phone.flushed()
    expect(laptop.responses).toHaveLength(2)
    tablet.addClip('after-the-pause', 'not for the paused laptop')
    await tablet.flushed()
    await laptop.barrier()
    expect(laptop.clips().has('after-the-pause')).toBe(false)
    expect(laptop.received).toEqual([])
  })

  it("a JSON change and the user's Yjs update after it, committed in one batch, are relayed in that order", async () => {
    await t.start()
    const web = await t.jsonDevice('alice', 'web')
    const phone = await t.device('alice', 'phone')
    const laptop = await t.device('alice', 'laptop')
    const serverClips = () => t.server.services.registry.peek('alice')?.doc.getMap('clips')

    const held = holdWrites()
    const change = web.send('create', { entityType: 'clip', entityId: 'from-web', data: { content: 'a change record' } })
    await waitFor(() => serverClips()?.has('from-web') === true, 'the change applied')
    phone.addClip('from-phone', 'a Yjs update after it')
    await waitFor(() => serverClips()?.has('from-phone') === true, 'the update applied')
    held.release()
    expect(await change).toMatchObject({ ok: true })
    await phone.flushed()
    await waitFor(() => laptop.clips().has('from-phone') && laptop.clips().has('from-web'), 'both on the laptop')
    expect(laptop.received.map((r) => r.deviceId)).toEqual(['web', 'phone'])
  })

  it('with RELAY_BEFORE_DURABLE=false, relays wait for the commit', async () => {
    await t.start(undefined, { relayBeforeDurable: false })
    const phone = await t.device('alice', 'phone')
    const laptop = await t.device('alice', 'laptop')

    const held = holdWrites()
    phone.addClip('late', 'after the commit')
    await waitFor(() => t.server.services.registry.peek('alice')?.doc.getMap('clips').has('late') === true, 'the update applied')
    await laptop.barrier()
    expect(laptop.received).toEqual([])

    held.release()
    await phone.flushed()
    await waitFor(() => laptop.clips().has('late'), 'the relay after the commit')
    expect(laptop.received).toHaveLength(1)
  })

  it('an update relayed and then not stored comes back from the device that holds it, though its author never returns', async () => {
    await t.start()
    const phone = await t.device('alice', 'phone')
    const laptop = await t.device('alice', 'laptop')

    const held = holdWrites()
    const failure = Object.assign(new Error('IO error: No space left on device'), { code: 'LEVEL_IO_ERROR' })
    phone.addClip('relayed-then-lost', 'only the laptop has it')
    await waitFor(() => laptop.clips().has('relayed-then-lost'), 'the relay on the laptop')
    held.fail(failure)

    // The author is refused and the user's devices are disconnected; the server reloads what it stored.
    await expect(phone.flushed()).rejects.toThrow(/UNAVAILABLE/)
    await waitFor(() => !phone.socket.connected && !laptop.socket.connected, 'the devices disconnected')
    const before = await t.device('alice', 'probe')
    expect(before.clips().has('relayed-then-lost')).toBe(false)
    phone.close() // the phone is gone for good
    vi.restoreAllMocks() // the disk has room again

    // The laptop's next sync sends what the server lacks: the relayed update.
    await laptop.reconnect()
    await laptop.flushed()
    const after = await t.device('alice', 'probe-2')
    expect(after.clips().get('relayed-then-lost')?.get('content')).toBe('only the laptop has it')
  })
})

describe('the group commit and the output of its turn', () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it("hands a batch to the store only after the turn's output has left (the write coalescer's release)", async () => {
    // The store's thread takes the CPU for the write's own work as soon as it gets a batch; relays and
    // acks still held in corked sockets (released in the check phase after the commit was queued) would
    // wait behind it.
    const store = await openStore(await tempDir())
    const silent = { error() {}, warn() {}, info() {}, debug() {} }
    const services = createServices(new LevelDocumentRepository(store, { syncWrites: false }), { docIdleMs: 60_000, compactMaxUpdates: 1000, compactMaxBytes: 1 << 30 }, silent)
    try {
      const doc = await services.sync.openDocument('alice').document
      const order: string[] = []
      // eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the repository as `this`
      const original = LevelDocumentRepository.prototype.write
      vi.spyOn(LevelDocumentRepository.prototype, 'write').mockImplementation(function (
        this: LevelDocumentRepository,
        ...args: Parameters<LevelDocumentRepository['write']>
      ) {
        order.push('batch to the store')
        return original.apply(this, args)
      })
      const client = new Y.Doc()
      client.getMap('clips').set('c1', new Y.Map([['content', 'one']]))
      // The commit is queued in this turn, then the turn's output is scheduled, as the coalescer does it.
      const durable = services.sync.applyUpdate(doc, Y.encodeStateAsUpdate(client), { userId: 'alice', deviceId: 'phone' })
      setImmediate(() => order.push('output released'))
      await durable
      expect(order).toEqual(['output released', 'batch to the store'])
    } finally {
      await services.close()
      await store.close()
    }
  })
})
