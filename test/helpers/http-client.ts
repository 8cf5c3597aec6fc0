/** A device's HTTP sync client (protocol §10), on Node's fetch. */
import type { SyncChange } from '../../src/types/sync.js'

export interface HttpReply<T = Record<string, unknown>> {
  status: number
  headers: Headers
  body: T
}

export class HttpSync {
  constructor(
    readonly url: string,
    readonly token: string | undefined,
    readonly deviceId: string,
  ) {}

  async request<T = Record<string, unknown>>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpReply<T>> {
    const headers: Record<string, string> = {}
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(`${this.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) })
    return { status: res.status, headers: res.headers, body: (await res.json()) as T }
  }

  /** One change-log page; `query` as the route's (lastSyncTimestamp, limit, entities, includeDeleted). */
  changes(query: Record<string, string | number | boolean> = {}) {
    const params = new URLSearchParams({ deviceId: this.deviceId, ...Object.fromEntries(Object.entries(query).map(([k, v]) => [k, String(v)])) })
    return this.request<{ changes: SyncChange[]; hasMore: boolean; cursor: number; serverTimestamp: number }>('GET', `/v1/sync/changes?${params.toString()}`)
  }

  send(changes: unknown[]) {
    return this.request<{ results: ({ ok: true; entityId: string; version: number; serverTimestamp: number; conflicts: string[] } | { ok: false; error: { code: string; message: string } })[] }>(
      'POST',
      '/v1/sync/changes',
      { deviceId: this.deviceId, changes },
    )
  }

  status() {
    return this.request('GET', `/v1/sync/status?deviceId=${this.deviceId}`)
  }

  resolve(conflictId: string, resolution: Record<string, unknown>) {
    return this.request('POST', `/v1/sync/conflicts/${encodeURIComponent(conflictId)}`, resolution)
  }
}

let counter = 0

/** A change record as a client makes one (`data` the fields to set, `version` the one last seen). */
export function changeOf(operationType: 'create' | 'update' | 'delete', entityId: string, data: Record<string, unknown> = {}, version = 0, entityType = 'clip') {
  return { id: `http-${++counter}-${entityId}`, entityType, entityId, operationType, data, version, timestamp: Date.now() }
}
