/**
 * The lookup of a document's entity collections by top-level type, which the
 * checks and the index use for every update's items.
 */
import { describe, expect, it } from 'vitest'
import * as Y from 'yjs'
import { ENTITY_SPECS } from '../src/models/entity-schema.js'
import { collectionSpecOf, rootNameOf } from '../src/services/root-types.js'
import { SyncEntityType } from '../src/types/sync.js'

describe('root types', () => {
  it('names the collection of a top-level type, and nothing for other types', () => {
    const doc = new Y.Doc()
    const clips = doc.getMap('clips')
    const other = doc.getMap('notes')
    clips.set('c1', new Y.Map())
    expect(collectionSpecOf(doc, clips)).toBe(ENTITY_SPECS[SyncEntityType.CLIP])
    expect(collectionSpecOf(doc, other)).toBeUndefined()
    expect(collectionSpecOf(doc, clips.get('c1'))).toBeUndefined()
    expect(collectionSpecOf(doc, undefined)).toBeUndefined()
    expect(rootNameOf(doc, clips)).toBe('clips')
    expect(rootNameOf(doc, other)).toBe('notes')
    expect(rootNameOf(doc, clips.get('c1'))).toBeUndefined()
  })

  it('follows the type Yjs puts in place of the placeholder an update made (never a stale answer)', () => {
    const source = new Y.Doc()
    source.getMap('clips').set('c1', new Y.Map())
    const doc = new Y.Doc()
    Y.applyUpdate(doc, Y.encodeStateAsUpdate(source))
    const placeholder = doc.share.get('clips')
    expect(collectionSpecOf(doc, placeholder)).toBe(ENTITY_SPECS[SyncEntityType.CLIP])
    // getMap replaces the placeholder with a Y.Map (same name, same count of top-level types).
    const clips = doc.getMap('clips')
    expect(clips).not.toBe(placeholder)
    expect(collectionSpecOf(doc, clips)).toBe(ENTITY_SPECS[SyncEntityType.CLIP])
    expect(collectionSpecOf(doc, placeholder)).toBeUndefined()
  })
})
