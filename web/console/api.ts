/**
 * The operators' API as the console calls it: the admin token kept in this
 * tab's sessionStorage and sent as `Authorization: Bearer` with every call;
 * errors (`{ error: { code, message } }`) thrown as ApiError. The reply types
 * are the server's (src/types/operators.ts).
 */

const TOKEN_KEY = 'superclip.adminToken'

export const adminToken = {
  get: (): string | null => sessionStorage.getItem(TOKEN_KEY),
  set: (token: string): void => sessionStorage.setItem(TOKEN_KEY, token),
  clear: (): void => sessionStorage.removeItem(TOKEN_KEY),
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

let onUnauthorized: () => void = () => {}

/** What to do when the server refuses the token (401): sign out. */
export function whenUnauthorized(handler: () => void): void {
  onUnauthorized = handler
}

// The server's own reply types (types only: nothing of the server is bundled).
export type { DeviceInfo as Device, RestoreResult as RestoreReply, SnapshotMeta, TrashEntry as TrashEntity, UserSummary, UsersPage } from '../../src/types/operators.js'

/** A call with the admin token; throws ApiError unless the reply is 2xx. */
export async function request(method: string, path: string, body?: unknown): Promise<Response> {
  const token = adminToken.get()
  if (token === null) throw new ApiError(401, 'UNAUTHORIZED', 'sign in first')
  const headers: Record<string, string> = { authorization: `Bearer ${token}` }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const res = await fetch(path, { method, headers, body: body === undefined ? null : JSON.stringify(body) })
  if (res.ok) return res
  let code = `HTTP_${res.status}`
  let message = res.statusText
  try {
    const reply = (await res.json()) as { error?: { code?: string; message?: string } }
    code = reply.error?.code ?? code
    message = reply.error?.message ?? message
  } catch {
    // Not a JSON error: keep the status.
  }
  if (res.status === 401) onUnauthorized()
  throw new ApiError(res.status, code, message)
}

export async function json<T>(method: string, path: string, body?: unknown): Promise<T> {
  return (await (await request(method, path, body)).json()) as T
}

/** `/admin/users/<userId>` plus `rest`, the id escaped. */
export const userPath = (userId: string, rest = ''): string => `/admin/users/${encodeURIComponent(userId)}${rest}`
