/**
 * Cluster mode's Redis (protocol §11): the official Socket.IO Redis adapter
 * (`@socket.io/redis-adapter` over node-redis) joins the nodes' Socket.IO
 * servers, so that an operator's action on any node reaches the user's
 * sockets wherever they are (`fetchSockets`, `disconnectSockets`), and an
 * admin request reaches the user's owner as a server-side event with acks
 * (`forward`). Relays, change records and conflicts never go through Redis:
 * all of a user's sockets are on the owner, so those broadcasts are local.
 *
 * While either Redis connection is down the node refuses writes (`reachable`
 * is false; services/sync.service.ts) and `/health` says so; node-redis
 * reconnects by itself, and writes are accepted again once both are back.
 */
import { createAdapter } from '@socket.io/redis-adapter'
import { createClient } from 'redis'
import type { Logger } from '../utils/logger.js'
import type { ForwardedReply, ForwardedRequest, SyncServer } from './types.js'

/** How long a forwarded admin request waits for the owner's reply. */
const FORWARD_TIMEOUT_MS = 10_000

/** How long a Redis connection attempt may take, and the longest wait between two. */
const CONNECT_TIMEOUT_MS = 2000
const MAX_RECONNECT_WAIT_MS = 2000

/** What this module uses of a node-redis client (the adapter takes the clients themselves). */
interface RedisClient {
  readonly isReady: boolean
  ping(): Promise<unknown>
  close(): Promise<unknown>
}

function internalError(err: unknown): ForwardedReply {
  const body = JSON.stringify({ error: { code: 'INTERNAL', message: `the owner failed the request: ${err instanceof Error ? err.message : String(err)}` } })
  return { statusCode: 500, contentType: 'application/json', body: Buffer.from(body).toString('base64') }
}

export class ClusterLink {
  private constructor(
    private readonly pub: RedisClient,
    private readonly sub: RedisClient,
    private readonly keyPrefix: string,
  ) {}

  /** Connects both Redis clients (the adapter publishes on one and subscribes on the other). */
  static async open(url: string, keyPrefix: string, log: Logger): Promise<ClusterLink> {
    const pub = createClient({
      url,
      socket: { connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy: (retries) => Math.min(100 * 2 ** retries, MAX_RECONNECT_WAIT_MS) },
    })
    const sub = pub.duplicate()
    for (const [name, client] of [['publish', pub], ['subscribe', sub]] as const) {
      let down = false
      client.on('error', (err: unknown) => {
        if (down) return
        down = true
        log.error({ err, client: name }, 'Redis unreachable: writes are refused until it is back')
      })
      client.on('ready', () => {
        if (!down) return
        down = false
        log.info({ client: name }, 'Redis reachable again')
      })
    }
    await Promise.all([pub.connect(), sub.connect()])
    return new ClusterLink(pub, sub, keyPrefix)
  }

  /** Links `io` to the other nodes; admin requests forwarded to `nodeId` (this node) are answered by `handle`. */
  attach(io: SyncServer, nodeId: string, handle: (request: ForwardedRequest) => Promise<ForwardedReply>): void {
    io.adapter(createAdapter(this.pub, this.sub, { key: `${this.keyPrefix}:socket.io`, requestsTimeout: FORWARD_TIMEOUT_MS }))
    io.on('admin:forward', (request, ack) => {
      // Every node gets it; only the owner it was sent to answers with a reply.
      if (request.toNodeId !== nodeId) return ack(null)
      handle(request).then(ack, (err: unknown) => ack(internalError(err)))
    })
  }

  /** Both connections are up. */
  get reachable(): boolean {
    return this.pub.isReady && this.sub.isReady
  }

  /** Resolves once Redis answers a PING, rejects if it does not. */
  async ping(): Promise<void> {
    if (!this.reachable) throw new Error('Redis is unreachable')
    await this.pub.ping()
  }

  /**
   * Sends an admin request to `nodeId` (the user's owner) through the
   * cluster; resolves with its reply, or undefined when the owner did not
   * answer (it is gone or paused: its lease will expire). The adapter waits
   * at most its requestsTimeout for every node; the owner's reply counts even
   * when another node did not answer in time.
   */
  forward(io: SyncServer, request: ForwardedRequest): Promise<ForwardedReply | undefined> {
    return new Promise((resolve) => {
      const done = (_err: Error | null, replies: (ForwardedReply | null)[] = []) => resolve(replies.find((r): r is ForwardedReply => r !== null))
      ;(io.serverSideEmit as (event: 'admin:forward', request: ForwardedRequest, ack: typeof done) => boolean)('admin:forward', request, done)
    })
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.pub.close(), this.sub.close()])
  }
}
