/**
 * The operators' HTTP API (docs/operations.md) as `npm run admin` calls it:
 * `Authorization: Bearer <ADMIN_TOKEN>`, JSON or octet-stream bodies, and the
 * server's `{ error: { code, message } }` thrown as an `AdminApiError`.
 */
import { readFile } from 'node:fs/promises'
import path from 'node:path'

/** A reply other than 2xx: the server's error code and message when it sent them. */
export class AdminApiError extends Error {
  override name = 'AdminApiError'
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** The reply's body: `{ error: { code, message } }` from the server, or its text. */
    readonly body: unknown,
  ) {
    super(message)
  }
}

/** The server could not be reached at all. */
export class UnreachableError extends Error {
  override name = 'UnreachableError'
}

export interface RequestOptions {
  /** A JSON body. */
  json?: unknown
  /** An `application/octet-stream` body. */
  bytes?: Uint8Array
  query?: Record<string, string | number | undefined>
}

/** `ADMIN_TOKEN`, else the token the server generated into `dataDir/admin-token`. */
export async function adminToken(env: NodeJS.ProcessEnv, dataDir: string): Promise<string> {
  if (env.ADMIN_TOKEN) return env.ADMIN_TOKEN
  const file = path.join(dataDir, 'admin-token')
  try {
    return (await readFile(file, 'utf8')).trim()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    throw new Error(`no admin token: set ADMIN_TOKEN, or point --data-dir (DATA_DIR) at the server's data directory (${file} does not exist)`, { cause: err })
  }
}

/** `/admin/users/<userId>` with every segment encoded (user ids are arbitrary strings). */
export const userPath = (userId: string, ...rest: string[]): string =>
  ['/admin/users', ...[userId, ...rest].map(encodeURIComponent)].join('/')

export class AdminClient {
  readonly baseUrl: string
  private token: Promise<string> | undefined

  /** The token is read on the first request (a command refused before it needs none). */
  constructor(
    baseUrl: string,
    private readonly readToken: () => Promise<string>,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '')
  }

  /** The reply as JSON (undefined for a 204). */
  async json<T>(method: string, route: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, route, options)
    if (res.status === 204) return undefined as T
    return (await res.json()) as T
  }

  async bytes(method: string, route: string, options: RequestOptions = {}): Promise<Uint8Array> {
    return new Uint8Array(await (await this.send(method, route, options)).arrayBuffer())
  }

  async text(method: string, route: string, options: RequestOptions = {}): Promise<string> {
    return (await this.send(method, route, options)).text()
  }

  private async send(method: string, route: string, { json, bytes, query }: RequestOptions): Promise<Response> {
    const url = new URL(this.baseUrl + route)
    for (const [name, value] of Object.entries(query ?? {})) if (value !== undefined) url.searchParams.set(name, String(value))
    this.token ??= this.readToken()
    const headers: Record<string, string> = { authorization: `Bearer ${await this.token}` }
    let body: string | Uint8Array | undefined
    if (bytes !== undefined) {
      headers['content-type'] = 'application/octet-stream'
      body = bytes
    } else if (json !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(json)
    }
    let res: Response
    try {
      res = await fetch(url, { method, headers, ...(body === undefined ? {} : { body }) })
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause
      throw new UnreachableError(`cannot reach ${this.baseUrl} (${cause?.code ?? cause?.message ?? String(err)}); is the server running? (--url or SYNC_URL)`)
    }
    if (res.ok) return res
    const text = await res.text()
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {
      // not JSON: keep the text
    }
    const error = (parsed as { error?: { code?: unknown; message?: unknown } } | undefined)?.error
    const code = typeof error?.code === 'string' ? error.code : `HTTP_${res.status}`
    const message = typeof error?.message === 'string' ? error.message : text || res.statusText
    throw new AdminApiError(res.status, code, message, parsed)
  }
}
