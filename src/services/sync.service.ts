/**
 * Yjs state-vector sync (PROTOCOL section 4): the diff a device lacks, and the
 * durable application of a device's update. Transport-free: handlers call it.
 */
import * as Y from 'yjs'
import type { DocumentRegistry } from './document-registry.js'
import type { SyncDocument } from './sync-document.js'
import type { UpdateCommitter } from './update-committer.js'
import { checkStateVector, checkUpdate } from './update-validator.js'
import { ErrorCode, SyncError } from '../utils/errors.js'

/** Clients told the server is shutting down wait about this long before reconnecting. */
const SHUTDOWN_RETRY_MS = 1000

export interface YjsDiff {
  /** Exactly what a holder of the given state vector lacks. */
  update: Uint8Array
  /** The server's state vector. */
  stateVector: Uint8Array
  serverTimestamp: number
}

export interface CommittedUpdate {
  serverTimestamp: number
  /** False for an update that carried nothing new to store (nothing to relay either). */
  stored: boolean
}

export class SyncService {
  private closing = false

  constructor(
    private readonly registry: DocumentRegistry,
    private readonly committer: UpdateCommitter,
  ) {}

  /** Refuses new updates from now on and resolves once every accepted one is durable and settled. */
  async drain(): Promise<void> {
    this.closing = true
    await this.committer.drain()
  }

  openDocument(userId: string): Promise<SyncDocument> {
    return this.registry.acquire(userId)
  }

  closeDocument(userId: string): void {
    this.registry.release(userId)
  }

  /** The diff for a device whose document has state vector `stateVector`. */
  diff(doc: SyncDocument, stateVector: Uint8Array): YjsDiff {
    checkStateVector(stateVector)
    return {
      update: Y.encodeStateAsUpdate(doc.doc, stateVector),
      stateVector: Y.encodeStateVector(doc.doc),
      serverTimestamp: doc.clock,
    }
  }

  /** The server's current state vector. */
  stateVector(doc: SyncDocument): Uint8Array {
    return Y.encodeStateVector(doc.doc)
  }

  /** Validates, stores and applies a device's update; resolves once it is durable. */
  async submitUpdate(doc: SyncDocument, update: Uint8Array, socketId: string): Promise<CommittedUpdate> {
    if (this.closing) {
      throw new SyncError(ErrorCode.UNAVAILABLE, 'the server is shutting down; resend after reconnecting', {
        retryAfterMs: SHUTDOWN_RETRY_MS,
      })
    }
    if (checkUpdate(update).empty) return { serverTimestamp: doc.clock, stored: false }
    const serverTimestamp = await this.committer.submit(doc, update, socketId)
    return { serverTimestamp, stored: true }
  }
}
