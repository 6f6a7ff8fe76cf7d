import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests import sibling packages from their TypeScript sources, so a change is tested without a rebuild.
    conditions: ['source'],
  },
  // The same for the Node side, where tests run: without it a test importing a sibling package by name got its
  // dist (a stale build, when only the sources had changed).
  ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    setupFiles: ['./test/setup/polyfill.ts'],
    globalSetup: ['./test/setup/temp-root.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Cross-process mesh tests start real daemons; on 2 cores they must not all run at once.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
