/**
 * The entity API of one type: `create`, `update`, `delete`, `get`, `list`,
 * each a plain Yjs transaction on the document with the shared layout
 * (one `Y.Map` per entity in the type's map). Every write is checked against
 * the schema first and refused whole with a `SyncClientError`
 * (`INVALID_PAYLOAD`, `NOT_FOUND`) before it touches the document.
 */
import { equalityDeep as isEqual } from 'lib0/function'
import * as Y from 'yjs'
import type { EntityView } from './entities.js'
import { SyncClientError } from './errors.js'
import { newId } from './ids.js'
import { DELETED, DELETED_AT, type EntitySpec } from './schema.js'

/** Writes the SDK makes on the app's behalf: local edits like any other, told apart in `change` events. */
const LOCAL_ORIGIN = Symbol('superclip-sync:local')

export class Collection<F extends object> {
  constructor(
    private readonly doc: Y.Doc,
    readonly spec: EntitySpec,
  ) {}

  /** The type's top-level map: entity id → `Y.Map` of its fields. */
  get map(): Y.Map<Y.Map<unknown>> {
    return this.doc.getMap(this.spec.collection)
  }

  /**
   * A new entity with these fields; returns its id (`options.id`, or a new
   * UUID). Given the id of a deleted entity, revives it with these fields.
   */
  create(fields: Partial<F>, options: { id?: string } = {}): string {
    const values = this.checked(fields)
    const id = options.id ?? newId()
    if (typeof id !== 'string' || id.length === 0 || id.length > 256) throw this.invalid('id must be a non-empty string of at most 256 characters')
    const existing = this.map.get(id)
    if (existing instanceof Y.Map && existing.get(DELETED) !== true) throw this.invalid(`${this.spec.type} ${id} already exists`)
    if (this.spec.type === 'clip' && !('createdAt' in values)) values.createdAt = Date.now()
    this.doc.transact(() => {
      if (existing instanceof Y.Map) {
        this.write(existing, values)
        existing.set(DELETED, false)
        existing.set(DELETED_AT, null)
        return
      }
      const entity = new Y.Map<unknown>()
      for (const [field, value] of Object.entries(values)) entity.set(field, this.toYjs(field, value))
      this.map.set(id, entity)
    }, LOCAL_ORIGIN)
    return id
  }

  /** Sets these fields of a live entity; a string for a text field or an array for a list field replaces its content. */
  update(id: string, fields: Partial<F>): void {
    const values = this.checked(fields)
    const entity = this.live(id)
    this.doc.transact(() => this.write(entity, values), LOCAL_ORIGIN)
  }

  /** Soft delete: the entity keeps its fields, marked `_deleted` with `deletedAt`. */
  delete(id: string): void {
    const entity = this.live(id)
    this.doc.transact(() => {
      entity.set(DELETED, true)
      entity.set(DELETED_AT, Date.now())
    }, LOCAL_ORIGIN)
  }

  /** The entity, or undefined when there is none or it is deleted (unless `includeDeleted`). */
  get(id: string, options: { includeDeleted?: boolean } = {}): EntityView<F> | undefined {
    const entity = this.map.get(id)
    if (!(entity instanceof Y.Map)) return undefined
    if (entity.get(DELETED) === true && !options.includeDeleted) return undefined
    return view<F>(id, entity)
  }

  /** Every live entity (and the deleted ones with `includeDeleted`), in no particular order. */
  list(options: { includeDeleted?: boolean } = {}): EntityView<F>[] {
    const entities: EntityView<F>[] = []
    for (const [id, entity] of this.map) {
      if (entity instanceof Y.Map && (options.includeDeleted || entity.get(DELETED) !== true)) entities.push(view<F>(id, entity))
    }
    return entities
  }

  private live(id: string): Y.Map<unknown> {
    const entity = this.map.get(id)
    if (!(entity instanceof Y.Map) || entity.get(DELETED) === true) {
      throw new SyncClientError('NOT_FOUND', `${this.spec.type} ${id} does not exist`)
    }
    return entity
  }

  private write(entity: Y.Map<unknown>, values: Record<string, unknown>): void {
    for (const [field, value] of Object.entries(values)) {
      const current = entity.get(field)
      const kind = this.spec.fields[field]!.kind
      if (kind === 'text' && current instanceof Y.Text) {
        if (current.toJSON() !== value) {
          current.delete(0, current.length)
          current.insert(0, value as string)
        }
      } else if (kind === 'list' && current instanceof Y.Array) {
        if (!isEqual(current.toArray(), value)) {
          current.delete(0, current.length)
          current.push(value as unknown[])
        }
      } else if (!isEqual(current, value)) {
        entity.set(field, this.toYjs(field, value))
      }
    }
  }

  private toYjs(field: string, value: unknown): unknown {
    const kind = this.spec.fields[field]!.kind
    if (kind === 'text') return new Y.Text(value as string)
    if (kind === 'list') return Y.Array.from(value as string[])
    return value
  }

  /** The fields given, each checked; undefined ones are left out. */
  private checked(fields: Partial<F>): Record<string, unknown> {
    if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) throw this.invalid('fields must be an object')
    const values: Record<string, unknown> = {}
    for (const [field, value] of Object.entries(fields)) {
      if (value === undefined) continue
      const spec = Object.hasOwn(this.spec.fields, field) ? this.spec.fields[field] : undefined
      if (!spec || field === DELETED || field === DELETED_AT) throw this.invalid(`${field} is not a field of ${this.spec.type}`)
      const why = spec.check(value)
      if (why) throw this.invalid(`${field}: ${why}`)
      values[field] = value
    }
    return values
  }

  private invalid(message: string): SyncClientError {
    return new SyncClientError('INVALID_PAYLOAD', message)
  }
}

function view<F>(id: string, entity: Y.Map<unknown>): EntityView<F> {
  const fields: Record<string, unknown> = { id }
  for (const [field, value] of entity) fields[field] = value
  return fields as EntityView<F>
}
