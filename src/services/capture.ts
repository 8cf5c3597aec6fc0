import type * as Y from 'yjs'

/** Runs `fn` and returns the document updates it produced (encoded V1, one per transaction). */
export function captureUpdates(doc: Y.Doc, fn: () => void): Uint8Array[] {
  const updates: Uint8Array[] = []
  const listener = (update: Uint8Array) => updates.push(update)
  doc.on('update', listener)
  try {
    fn()
  } finally {
    doc.off('update', listener)
  }
  return updates
}
