import type { FastifyInstance } from 'fastify'

/** `GET /health`: `{ status: 'ok' }` while the store is open, 503 once it is closing. */
export function registerHealthRoutes(app: FastifyInstance, isOpen: () => boolean): void {
  app.get('/health', async (_request, reply) => {
    if (isOpen()) return { status: 'ok' }
    return reply.code(503).send({ status: 'unavailable' })
  })
}
