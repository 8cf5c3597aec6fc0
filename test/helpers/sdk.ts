/** SDK clients (`@superclip/sync-client`, built) for tests, closed after each test. */
import { afterEach } from 'vitest'
import { SyncClient, type SyncClientOptions } from '@superclip/sync-client'

export interface ClientFixture {
  /** A client with memory storage unless told otherwise; closed after the test. */
  client(options: SyncClientOptions): SyncClient
}

export function useClients(): ClientFixture {
  const clients: SyncClient[] = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()))
  })
  return {
    client(options) {
      const client = new SyncClient({ storage: 'memory', ...options })
      clients.push(client)
      return client
    },
  }
}

/** Every client synced with nothing pending, bounded. */
export async function allSynced(clients: SyncClient[], ms = 20_000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`not synced in ${ms} ms: ${clients.map((c) => `${c.deviceId} ${c.status} ${c.pendingChanges}`).join(', ')}`)), ms)
  })
  try {
    await Promise.race([Promise.all(clients.map((c) => c.whenSynced())), timeout])
  } finally {
    clearTimeout(timer)
  }
}
