/**
 * The SDK carries its own copy of the entity schema (it has no server
 * dependency): the same types, fields and kinds as the server's, and the
 * same verdict on every sample value.
 */
import { describe, expect, it } from 'vitest'
import { ENTITY_SPECS as CLIENT_SPECS } from '@superclip/sync-client'
import { ENTITY_SPECS as SERVER_SPECS } from '../src/models/entity-schema.js'

const SAMPLES: unknown[] = [
  '', 'text', 'html', 'video', 0, 1, 1.5, -1, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, true, false, null,
  [], ['a', 'b'], [1], ['a', 2], {}, { a: 1 }, { a: { b: [1, 'x', null] } }, [{ a: 1 }],
]

describe('the SDK schema', () => {
  it('has the server’s entity types, collections, fields and kinds', () => {
    const shape = (specs: Record<string, { collection: string; fields: Readonly<Record<string, { kind: string }>> }>) =>
      Object.fromEntries(
        Object.entries(specs).map(([type, spec]) => [type, { collection: spec.collection, fields: Object.fromEntries(Object.entries(spec.fields).map(([f, s]) => [f, s.kind])) }]),
      )
    expect(shape(CLIENT_SPECS)).toEqual(shape(SERVER_SPECS))
  })

  it('accepts and refuses the same values as the server, field by field', () => {
    for (const [type, spec] of Object.entries(SERVER_SPECS)) {
      for (const [field, server] of Object.entries(spec.fields)) {
        const client = CLIENT_SPECS[type as keyof typeof CLIENT_SPECS].fields[field]!
        for (const sample of SAMPLES) {
          expect(client.check(sample) === undefined, `${type}.${field} = ${JSON.stringify(sample)}`).toBe(server.value.safeParse(sample).success)
        }
      }
    }
  })
})
