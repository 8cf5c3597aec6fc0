import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    environment: 'node',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real servers on port 0 and write LevelDB to temp dirs;
    // two forks keep the 2-core machines busy without starving the servers.
    pool: 'forks',
    maxWorkers: 2,
    allowOnly: false,
  },
})
