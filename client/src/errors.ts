/** Errors the client raises or reports: the server's codes (docs/protocol.md, errors) plus its own. */
import type { ProtocolError } from './protocol.js'

/**
 * - a server code (`INVALID_PAYLOAD`, `QUOTA_EXCEEDED`, `UNAUTHORIZED`, `REVOKED`, …) for what the server refused;
 * - `NOT_FOUND`, `INVALID_PAYLOAD` for an entity API call refused before it touched the document;
 * - `CLOSED` for calls on a closed client; `STORAGE` when the local store cannot be used.
 */
export class SyncClientError extends Error {
  override readonly name = 'SyncClientError'
  readonly code: string
  readonly retryAfterMs: number | undefined
  constructor(code: string, message: string, retryAfterMs?: number) {
    super(message)
    this.code = code
    this.retryAfterMs = retryAfterMs
  }

  static from(error: ProtocolError): SyncClientError {
    return new SyncClientError(error.code, error.message, error.retryAfterMs)
  }
}
