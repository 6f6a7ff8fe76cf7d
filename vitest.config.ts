import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests import sibling packages from their TypeScript sources, so a change is tested without a rebuild.
    conditions: ['source'],
  },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    setupFiles: ['./test/setup/polyfill.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Cross-process mesh tests start real daemons; on 2 cores they must not all run at once.
    fileParallelism: true,
    maxWorkers: 2,
  },
});
