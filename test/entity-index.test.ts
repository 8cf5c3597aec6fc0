import * as Y from 'yjs'
import { describe, expect, it } from 'vitest'
import { Section, sectionRange } from '../src/repositories/keys.js'
import { openStore } from '../src/repositories/level-store.js'
import { useServer } from './helpers/fixture.js'
import { tempDir } from './helpers/server.js'

describe('the entity index', () => {
  const t = useServer()

  it('is rebuilt from the document when it is missing', async () => {
    const dir = await tempDir()
    await t.start(dir)
    const y = await t.device('alice', 'phone')
    for (let i = 0; i < 30; i++) y.addClip(`c${i}`, `clip ${i}`)
    y.doc.getMap('settings').set('theme', new Y.Map([['value', 'dark']]))
    await y.flushed()
    y.close()
    await t.server.stop()

    // Lose the index: entity records and the by-time ordering.
    const store = await openStore(dir)
    await store.clear(sectionRange('alice', Section.ENTITY))
    await store.clear(sectionRange('alice', Section.BY_TIME))
    await store.close()

    await t.start(dir)
    const j = await t.jsonDevice('alice', 'web')
    expect(j.entities.size).toBe(31)
    expect(j.entity('clip', 'c7')).toMatchObject({ version: 1, deleted: false, data: { content: 'clip 7' } })
    const timestamps = [...j.entities.values()].map((e) => e.timestamp)
    expect(new Set(timestamps).size).toBe(31)

    // Rebuilt once and stored: after another restart nothing is rebuilt again (versions unchanged).
    await t.start(dir)
    const j2 = await t.jsonDevice('alice', 'web-2')
    expect(j2.entity('clip', 'c7')?.version).toBe(1)
    expect([...j2.entities.values()].map((e) => e.timestamp).sort()).toEqual([...timestamps].sort())
  })
})
