/**
 * The one error catalog (protocol §2). Everything thrown inside an event
 * handler becomes a `ProtocolError` through `toProtocolError`; nothing thrown
 * by one event may fail the connection's other events or the process.
 */

export const ErrorCode = {
  UNAUTHORIZED: 'UNAUTHORIZED',
  FORBIDDEN: 'FORBIDDEN',
  INVALID_PAYLOAD: 'INVALID_PAYLOAD',
  INVALID_UPDATE: 'INVALID_UPDATE',
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  QUOTA_EXCEEDED: 'QUOTA_EXCEEDED',
  RATE_LIMITED: 'RATE_LIMITED',
  CONFLICT_NOT_FOUND: 'CONFLICT_NOT_FOUND',
  NOT_FOUND: 'NOT_FOUND',
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL: 'INTERNAL',
  /** A revoked device, refused at connect and on HTTP (protocol §9). */
  REVOKED: 'REVOKED',
} as const

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode]

/** The error object that travels in acks, `sync:error` and `connect_error` data. */
export interface ProtocolError {
  code: ErrorCode
  message: string
  retryAfterMs?: number
}

export class SyncError extends Error {
  readonly code: ErrorCode
  readonly retryAfterMs: number | undefined

  constructor(code: ErrorCode, message: string, options: { cause?: unknown; retryAfterMs?: number } = {}) {
    super(message, { cause: options.cause })
    this.name = 'SyncError'
    this.code = code
    this.retryAfterMs = options.retryAfterMs
  }
}

/** Raised when another process holds the store: the LevelDB lock on DATA_DIR, or the PostgreSQL store's advisory lock. */
export class StoreLockedError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, { cause })
    this.name = 'StoreLockedError'
  }

  /** Another process holds the LevelDB lock on `dir`. */
  static dataDir(dir: string, cause: unknown): StoreLockedError {
    return new StoreLockedError(
      `DATA_DIR ${dir} is in use by another process (LevelDB lock held). ` + 'Stop the other server or start this one with another DATA_DIR.',
      cause,
    )
  }
}

/** Turns anything thrown into a protocol error; unknown failures become INTERNAL. */
export function toProtocolError(err: unknown): ProtocolError {
  if (err instanceof SyncError) {
    return err.retryAfterMs === undefined
      ? { code: err.code, message: err.message }
      : { code: err.code, message: err.message, retryAfterMs: err.retryAfterMs }
  }
  return { code: ErrorCode.INTERNAL, message: 'internal server error' }
}

/** The HTTP status of each error code (protocol §§9 and 10). */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  INVALID_PAYLOAD: 400,
  INVALID_UPDATE: 400,
  PAYLOAD_TOO_LARGE: 413,
  // A plan's quota forbids the write; the request itself was fine.
  QUOTA_EXCEEDED: 403,
  RATE_LIMITED: 429,
  CONFLICT_NOT_FOUND: 404,
  NOT_FOUND: 404,
  UNAVAILABLE: 503,
  INTERNAL: 500,
  REVOKED: 401,
}
