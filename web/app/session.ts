/**
 * What the web client keeps in this browser's localStorage: the device token
 * pasted at sign-in (until sign-out), and this browser's device id,
 * `web-<uuid>`, made once and kept across sign-outs, so the server sees one
 * device per browser profile (each with its own IndexedDB).
 */

const TOKEN_KEY = 'superclip.deviceToken'
const DEVICE_KEY = 'superclip.deviceId'

export const deviceToken = {
  get: (): string | null => localStorage.getItem(TOKEN_KEY),
  set: (token: string): void => localStorage.setItem(TOKEN_KEY, token),
  clear: (): void => localStorage.removeItem(TOKEN_KEY),
}

export function deviceId(): string {
  let id = localStorage.getItem(DEVICE_KEY)
  if (id === null) {
    id = `web-${uuid()}`
    localStorage.setItem(DEVICE_KEY, id)
  }
  return id
}

/** A v4 UUID; `crypto.randomUUID` only exists on secure origins, `getRandomValues` everywhere. */
function uuid(): string {
  const b = crypto.getRandomValues(new Uint8Array(16))
  b[6] = (b[6]! & 0x0f) | 0x40
  b[8] = (b[8]! & 0x3f) | 0x80
  const hex = [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/**
 * The user a device token is for (its `sub`), read without verifying it (the
 * server verifies), or why it is not a token: checked before it is kept.
 */
export function userOfToken(token: string): { userId: string } | { error: string } {
  const parts = token.split('.')
  if (parts.length !== 3) return { error: 'This is not a device token (a JWT has three parts separated by dots).' }
  try {
    const json = atob(parts[1]!.replace(/-/g, '+').replace(/_/g, '/'))
    const { sub } = JSON.parse(json) as { sub?: unknown }
    if (typeof sub === 'string' && sub !== '') return { userId: sub }
  } catch {
    // fall through
  }
  return { error: 'This token does not name a user (no sub claim).' }
}
