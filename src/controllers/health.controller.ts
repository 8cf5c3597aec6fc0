import type { FastifyInstance } from 'fastify'

/**
 * `GET /health`: `{ status: 'ok', nodeId, store: { kind, reachable: true } }`,
 * plus `redis: { reachable: true }` on a cluster node, while the store (and
 * Redis) answer; 503 with `status: 'unavailable'` once the server is closing
 * or when either cannot be reached (a load balancer then sends clients
 * elsewhere; writes are refused meanwhile, and the server recovers by itself
 * when they are back).
 */
export function registerHealthRoutes(
  app: FastifyInstance,
  isOpen: () => boolean,
  node: { nodeId: string | undefined; store: { kind: string; ping(): Promise<void> }; redis?: { ping(): Promise<void> } | undefined },
): void {
  const answers = (service: { ping(): Promise<void> }): Promise<boolean> => service.ping().then(() => true, () => false)
  app.get('/health', async (_request, reply) => {
    const open = isOpen()
    const [store, redis] = await Promise.all([open && answers(node.store), node.redis && open && answers(node.redis)])
    const ok = store && redis !== false
    const body = {
      status: ok ? 'ok' : 'unavailable',
      nodeId: node.nodeId,
      store: { kind: node.store.kind, reachable: store },
      ...(node.redis ? { redis: { reachable: redis === true } } : {}),
    }
    return ok ? body : reply.code(503).send(body)
  })
}
