import type { FastifyInstance } from 'fastify'

/**
 * `GET /health`: `{ status: 'ok', nodeId, store: { kind, reachable: true } }`
 * while the store is open and answers; 503 with `status: 'unavailable'` once
 * the server is closing or when the store cannot be reached (a load balancer
 * then sends clients elsewhere; writes are refused meanwhile, and the server
 * recovers by itself when the store is back).
 */
export function registerHealthRoutes(
  app: FastifyInstance,
  isOpen: () => boolean,
  node: { nodeId: string | undefined; store: { kind: string; ping(): Promise<void> } },
): void {
  app.get('/health', async (_request, reply) => {
    const reachable = isOpen() && (await node.store.ping().then(() => true, () => false))
    const body = { status: reachable ? 'ok' : 'unavailable', nodeId: node.nodeId, store: { kind: node.store.kind, reachable } }
    return reachable ? body : reply.code(503).send(body)
  })
}
