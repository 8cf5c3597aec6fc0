/** The operators' HTTP API (protocol §9) as a test calls it. */
export interface AdminReply<T = Record<string, unknown>> {
  status: number
  body: T
  headers: Headers
}

export class AdminClient {
  constructor(
    readonly url: string,
    readonly token: string | undefined,
  ) {}

  async request<T = Record<string, unknown>>(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<AdminReply<T>> {
    const headers: Record<string, string> = {}
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`
    let payload: string | Uint8Array | undefined
    if (body !== undefined) {
      headers['content-type'] = contentType
      payload = body instanceof Uint8Array || typeof body === 'string' ? body : JSON.stringify(body)
    }
    const res = await fetch(`${this.url}${path}`, { method, headers, ...(payload === undefined ? {} : { body: payload }) })
    const type = res.headers.get('content-type') ?? ''
    const parsed = type.includes('json') ? await res.json() : type.includes('octet-stream') ? new Uint8Array(await res.arrayBuffer()) : await res.text()
    return { status: res.status, body: parsed as T, headers: res.headers }
  }

  get<T = Record<string, unknown>>(path: string) {
    return this.request<T>('GET', path)
  }

  post<T = Record<string, unknown>>(path: string, body?: unknown) {
    return this.request<T>('POST', path, body)
  }

  delete<T = Record<string, unknown>>(path: string) {
    return this.request<T>('DELETE', path)
  }
}
