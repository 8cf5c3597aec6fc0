/**
 * How many entities a Yjs update would create, per type (the plan's
 * per-type limit counts them before anything is applied).
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { newEntitiesInUpdate } from '../src/services/plan-limits.js'
import { SyncEntityType } from '../src/types/sync.js'

const entity = (doc: Y.Doc, collection: string, id: string) => doc.getMap(collection).set(id, new Y.Map([['name', id]]))

describe('newEntitiesInUpdate', () => {
  it('counts distinct new keys per type, once each however many clients wrote them, and not keys the document holds', () => {
    const server = new Y.Doc()
    entity(server, 'clips', 'old')
    const a = new Y.Doc()
    const b = new Y.Doc()
    Y.applyUpdate(a, Y.encodeStateAsUpdate(server))
    Y.applyUpdate(b, Y.encodeStateAsUpdate(server))
    // Two devices create the same clip concurrently, and more: their updates merged into one.
    entity(a, 'clips', 'c1')
    entity(a, 'clips', 'c2')
    entity(a, 'tags', 't1')
    entity(b, 'clips', 'c1')
    entity(b, 'tags', 't1')
    entity(b, 'tags', 't2')
    const sv = Y.encodeStateVector(server)
    const update = Y.mergeUpdates([Y.encodeStateAsUpdate(a, sv), Y.encodeStateAsUpdate(b, sv)])
    const counts = newEntitiesInUpdate(server, Y.decodeUpdate(update))
    expect(Object.fromEntries(counts)).toEqual({ [SyncEntityType.CLIP]: 2, [SyncEntityType.TAG]: 2 })
  })

  it('counts nothing for an update that only edits entities the document holds', () => {
    const server = new Y.Doc()
    entity(server, 'clips', 'c1')
    const a = new Y.Doc()
    Y.applyUpdate(a, Y.encodeStateAsUpdate(server))
    const sv = Y.encodeStateVector(a)
    ;(a.getMap('clips').get('c1') as Y.Map<unknown>).set('title', 'edited')
    expect(newEntitiesInUpdate(server, Y.decodeUpdate(Y.encodeStateAsUpdate(a, sv))).size).toBe(0)
    // A single new key: counted once.
    entity(a, 'clips', 'c2')
    expect(Object.fromEntries(newEntitiesInUpdate(server, Y.decodeUpdate(Y.encodeStateAsUpdate(a, sv))))).toEqual({ [SyncEntityType.CLIP]: 1 })
  })
})
