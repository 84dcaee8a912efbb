import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 90_000,
    hookTimeout: 120_000,
    // Browser, IMAP and crash tests start real servers; two files at a time suit a small machine.
    maxWorkers: 2,
    minWorkers: 1,
  },
});
