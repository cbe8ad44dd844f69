import { defineConfig } from 'vitest/config';

// Tests start real daemons and mounts; on a 2-core machine, files run one or two at a time.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    fileParallelism: true,
    maxWorkers: 2,
    pool: 'forks',
    reporters: ['default'],
  },
});
