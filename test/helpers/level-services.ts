/**
 * The services over a LevelDB store in a temporary directory, as service-level
 * tests open them (no server, no sockets); closed after each test.
 */
import { afterEach } from 'vitest'
import { LevelDocumentRepository } from '../../src/repositories/level.repository.js'
import { openStore, type Store } from '../../src/repositories/level-store.js'
import { createServices, type Services } from '../../src/services/index.js'
import { tempDir } from './server.js'

type Policy = Parameters<typeof createServices>[1]

const silent = { error() {}, warn() {}, info() {}, debug() {} }

export function useLevelServices(policy: Policy) {
  let store: Store | undefined
  let services: Services | undefined
  afterEach(async () => {
    await services?.close()
    await store?.close()
    services = store = undefined
  })
  return {
    /** New services over a new store, with `changes` to the policy; `reload`: over the same store again, as after a restart. */
    async open(options: { reload?: boolean; changes?: Partial<Policy> } = {}): Promise<Services> {
      if (options.reload) await services?.close()
      else store = await openStore(await tempDir())
      services = createServices(new LevelDocumentRepository(this.store, { syncWrites: false }), { ...policy, ...options.changes }, silent)
      return services
    },
    get store(): Store {
      if (!store) throw new Error('open() first')
      return store
    },
    get services(): Services {
      if (!services) throw new Error('open() first')
      return services
    },
  }
}
