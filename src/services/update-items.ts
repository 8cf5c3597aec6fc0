/**
 * The items a decoded Yjs update brings, indexed once for every check that
 * walks it (the inspector, the schema check): per client in clock order, so
 * the item holding a clock (items may be merged runs) is a binary search. An
 * initial sync's update holds thousands of items; string keys per probe cost
 * an allocation each.
 */
import * as Y from 'yjs'
import type { DecodedUpdate } from './update-validator.js'

export class UpdateItems {
  private readonly byClient = new Map<number, Y.Item[]>()

  constructor(decoded: DecodedUpdate) {
    for (const s of decoded.structs) {
      if (!(s instanceof Y.Item)) continue
      let items = this.byClient.get(s.id.client)
      if (!items) this.byClient.set(s.id.client, (items = []))
      items.push(s)
    }
  }

  /** The update's item holding clock `id`, if the update has one. */
  at(id: Y.ID): Y.Item | undefined {
    const items = this.byClient.get(id.client)
    if (!items) return undefined
    let lo = 0
    let hi = items.length - 1
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1
      const item = items[mid] as Y.Item
      if (id.clock < item.id.clock) hi = mid - 1
      else if (id.clock >= item.id.clock + item.length) lo = mid + 1
      else return item
    }
    return undefined
  }
}
