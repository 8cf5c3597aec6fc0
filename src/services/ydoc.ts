/**
 * A `Y.Doc` for the server's own use. Its guid is given: without one, Yjs
 * draws a UUID with lib0's `uuidv4`, which makes 31 `getRandomValues` calls,
 * about 150 µs in Node 20 (8 µs with the guid given), paid at every document
 * load. The server's documents have no subdocuments, so the guid is never read.
 */
import * as Y from 'yjs'

export const newServerDoc = (): Y.Doc => new Y.Doc({ guid: 'superclip' })
