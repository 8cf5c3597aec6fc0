/**
 * Values decoded from an update held in arrays sized to fit. Yjs reads an
 * item's JSON values (`ContentAny`, and the legacy `ContentJSON`) by pushing
 * each onto an empty array, and V8 gives an array that grows from empty room
 * for 17 values: a one-value field (most of an entity's fields) keeps about
 * 150 bytes it never uses. In a document of clips that was a fifth of what
 * Yjs holds in memory, all of it for the garbage collector to copy and mark.
 * Once an update is applied, the arrays of the items it brought are replaced
 * with copies of their length (`slice`); the values are the same. The same
 * is done after a load, and after the server's own transactions.
 */
import * as Y from 'yjs'

/**
 * Arrays the document's items hold once `structs` (an update's, as
 * `Y.decodeUpdate` reads them) are applied. Consecutive structs that Yjs
 * merged into one item are copied once, not once per struct (an update of
 * thousands of one-value structs merged into one list item would otherwise
 * copy the growing array each time).
 */
export function trimAppliedContent(doc: Y.Doc, structs: readonly (Y.Item | Y.GC | Y.Skip)[]): void {
  const clients = doc.store.clients
  let last: Y.Item | undefined
  for (const struct of structs) {
    if (!(struct instanceof Y.Item) || !hasValues(struct.content)) continue
    const { client, clock } = struct.id
    // Applied whole (the caller checked nothing stayed pending): the client's structs hold this clock.
    const held = clients.get(client)
    if (!held) continue
    const item = held[Y.findIndexSS(held, clock)]
    // A collected item (a GC struct) has no values left.
    if (item === last || !(item instanceof Y.Item)) continue
    trim(item)
    last = item
  }
}

/**
 * Arrays of the items the document's own client made from `clock` on: a
 * transaction the server ran itself (a JSON change, a conflict's
 * resolution), whose list values Yjs also gathers by `push`.
 */
export function trimOwnContent(doc: Y.Doc, clock: number): void {
  const held = doc.store.clients.get(doc.clientID)
  if (!held || clock >= Y.getState(doc.store, doc.clientID)) return
  for (let i = Y.findIndexSS(held, clock); i < held.length; i++) {
    const item = held[i]
    if (item instanceof Y.Item) trim(item)
  }
}

/** Every item's arrays (a document just loaded). */
export function trimAllContent(doc: Y.Doc): void {
  for (const structs of doc.store.clients.values()) {
    for (const item of structs) if (item instanceof Y.Item) trim(item)
  }
}

function hasValues(content: unknown): content is Y.ContentAny | Y.ContentJSON {
  return content instanceof Y.ContentAny || content instanceof Y.ContentJSON
}

/** Replaces `item`'s values with a copy of their length; a frozen array (Yjs freezes them in development mode) stays frozen. */
function trim(item: Y.Item): void {
  const content = item.content
  if (!hasValues(content)) return
  const copy = content.arr.slice()
  if (Object.isFrozen(content.arr)) Object.freeze(copy)
  content.arr = copy
}
