/**
 * One change as one Yjs transaction: runs it, captures the update it makes,
 * and indexes what it touched (new versions and commit timestamps). The JSON
 * path and conflict resolution both write this way.
 */
import * as Y from 'yjs'
import type { TransactionOrigin } from '../types/origins.js'
import { captureUpdates } from './capture.js'
import { trimOwnContent } from './content-arrays.js'
import { recordTouched, touchedEntities, type IndexWrite } from './entity-index.js'
import type { SyncDocument } from './sync-document.js'

export interface IndexedTransaction {
  /** The transaction's Yjs update, or none when it changed nothing. */
  update: Uint8Array | undefined
  indexWrites: IndexWrite[]
}

export function transactIndexed(
  sync: SyncDocument,
  origin: TransactionOrigin & { deviceId: string },
  write: () => void,
): IndexedTransaction {
  const transactions: Y.Transaction[] = []
  const ownClock = Y.getState(sync.doc.store, sync.doc.clientID)
  const [update] = captureUpdates(sync.doc, () =>
    Y.transact(
      sync.doc,
      (tr) => {
        transactions.push(tr)
        write()
      },
      origin,
    ),
  )
  trimOwnContent(sync.doc, ownClock)
  const indexWrites = recordTouched(sync, touchedEntities(sync.doc, transactions), origin.deviceId)
  if (indexWrites.length === 0) sync.tick() // the commit still gets its own timestamp
  return { update, indexWrites }
}
