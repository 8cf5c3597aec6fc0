/**
 * A Yjs update is held to the entity schema as a change record is (protocol
 * §3): an unknown field, a value of the wrong type or kind, a top-level type
 * outside the layout, or anything nested where the schema has no place is
 * INVALID_PAYLOAD, and nothing of the update is applied, not even its valid
 * edits.
 */
import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { snapshot, waitFor } from './helpers/device.js'
import { useServer } from './helpers/fixture.js'
import { yjsWrite } from './helpers/json-device.js'

type Edit = (doc: Y.Doc) => void

const clip = (fields: [string, unknown][]) => new Y.Map<unknown>(fields)

describe('Yjs updates against the entity schema (protocol §3)', () => {
  const t = useServer()

  /** A live device holding clip c1 (with a body-bearing template t1), and a JSON device watching. */
  async function setup() {
    await t.start()
    const y = await t.device('alice', 'phone')
    const j = await t.jsonDevice('alice', 'web')
    y.doc.transact(() => {
      y.clips().set('c1', clip([['content', 'v0'], ['contentType', 'text'], ['tagIds', Y.Array.from(['t1'])]]))
      y.doc.getMap('templates').set('t1', clip([['name', 'T'], ['body', new Y.Text('hello')]]))
    })
    await y.flushed()
    await waitFor(() => j.live.length === 2, 'both entities on the JSON device')
    return { y, j }
  }

  /** An update that makes `edit` (and a valid title edit) on a copy of the device's document. */
  function updateOf(y: { doc: Y.Doc }, edit: Edit): Uint8Array {
    const copy = new Y.Doc()
    Y.applyUpdate(copy, Y.encodeStateAsUpdate(y.doc))
    const before = Y.encodeStateVector(copy)
    copy.transact(() => {
      ;(copy.getMap('clips').get('c1') as Y.Map<unknown>).set('title', 'a valid edit in the same update')
      edit(copy)
    })
    return Y.encodeStateAsUpdate(copy, before)
  }

  const c1 = (doc: Y.Doc) => doc.getMap('clips').get('c1') as Y.Map<unknown>
  const cases: [string, Edit, RegExp][] = [
    ['a value of the wrong type', (d) => c1(d).set('pinned', 'yes'), /clip c1\.pinned/],
    ['a value outside an enum', (d) => c1(d).set('contentType', 'video'), /clip c1\.contentType/],
    ['an unknown field', (d) => c1(d).set('bogus', 1), /bogus is not a field of clip/],
    ['a __proto__ key', (d) => c1(d).set('__proto__', 'x'), /__proto__ is not a field of clip/],
    ['a Y.Map where a JSON value belongs', (d) => c1(d).set('title', new Y.Map()), /clip c1\.title must be a JSON value/],
    ['binary where a JSON value belongs', (d) => c1(d).set('source', new Uint8Array([1, 2])), /clip c1\.source must be a JSON value/],
    ['a plain string where a text field belongs', (d) => (d.getMap('templates').get('t1') as Y.Map<unknown>).set('body', 'flat'), /template t1\.body must be a Y\.Text/],
    ['a Y.Text where a list belongs', (d) => c1(d).set('tagIds', new Y.Text('t1')), /clip c1\.tagIds must be a Y\.Array/],
    ['a list element of the wrong type', (d) => (c1(d).get('tagIds') as Y.Array<unknown>).push([42]), /clip c1\.tagIds/],
    ['a nested type inside a list', (d) => (c1(d).get('tagIds') as Y.Array<unknown>).push([new Y.Map()]), /clip c1\.tagIds is not a list or text/],
    ['a top-level type outside the layout', (d) => d.getText('notes').insert(0, 'secret'), /top-level type notes/],
    ['a new entity with a bad field', (d) => d.getMap('folders').set('f1', clip([['name', 'F'], ['order', 'first']])), /folder f1\.order/],
  ]

  it.each(cases)('%s is INVALID_PAYLOAD and changes nothing', async (_what, edit, message) => {
    const { y, j } = await setup()
    const before = snapshot(y.doc)
    const reply = await y.send(updateOf(y, edit))
    expect(reply).toEqual({ ok: false, error: { code: 'INVALID_PAYLOAD', message: expect.stringMatching(message) } })
    await j.barrier()
    expect(j.live).toHaveLength(2)
    const fresh = await t.device('alice', 'fresh')
    expect(snapshot(fresh.doc)).toEqual(before)
  })

  it('valid edits of every kind pass: fields, text and list edits, new entities, soft delete and revive', async () => {
    const { y, j } = await setup()
    const edits: Edit[] = [
      (d) => c1(d).set('pinned', true),
      (d) => ((d.getMap('templates').get('t1') as Y.Map<unknown>).get('body') as Y.Text).insert(5, ' world', { bold: true }),
      (d) => (c1(d).get('tagIds') as Y.Array<unknown>).push(['t2']),
      (d) => d.getMap('folders').set('f1', clip([['name', 'F'], ['parentId', null], ['order', 1]])),
      (d) => d.getMap('settings').set('theme', clip([['value', { mode: 'dark', sizes: [1, 2] }]])),
      (d) => {
        c1(d).set('_deleted', true)
        c1(d).set('deletedAt', 1_700_000_000_000)
      },
      (d) => {
        c1(d).set('_deleted', false)
        c1(d).set('deletedAt', null) // a device reviving an entity may clear deletedAt
      },
    ]
    for (const edit of edits) await yjsWrite(y, edit)
    await waitFor(() => j.entity('folder', 'f1') !== undefined && j.entity('setting', 'theme') !== undefined, 'the new entities on the JSON device')
    const fresh = await t.device('alice', 'fresh')
    expect(fresh.doc.getMap('templates').toJSON()).toMatchObject({ t1: { body: 'hello world' } })
    expect(fresh.clips().toJSON()).toMatchObject({ c1: { pinned: true, tagIds: ['t1', 't2'], _deleted: false, deletedAt: null } })
  })
})
