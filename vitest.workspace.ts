import type { TestProjectConfiguration } from 'vitest/config';

/**
 * The test projects. `unit` is pure logic; `integration` runs against a real embedded Postgres and a
 * real Temporal dev server that tests/support/global-setup.ts starts once for the run (and stops).
 */
export default [
  {
    test: {
      name: 'unit',
      sequence: { groupOrder: 0 },
      include: ['packages/*/test/**/*.test.ts', 'services/*/test/unit/**/*.test.ts'],
    },
  },
  {
    test: {
      name: 'integration',
      sequence: { groupOrder: 1 },
      include: ['services/*/test/integration/**/*.test.ts', 'tests/e2e/**/*.test.ts'],
      globalSetup: ['tests/support/global-setup.ts'],
      testTimeout: 120_000,
      hookTimeout: 180_000,
      maxWorkers: 2,
    },
  },
  {
    test: {
      name: 'hostile',
      sequence: { groupOrder: 2 },
      include: ['tests/hostile/**/*.test.ts'],
      globalSetup: ['tests/support/global-setup.ts'],
      testTimeout: 180_000,
      hookTimeout: 180_000,
      maxWorkers: 2,
    },
  },
  {
    // Slow: real outages of minutes. Mostly idle waiting, so it runs beside the hostile suite.
    test: {
      name: 'chaos',
      sequence: { groupOrder: 2 },
      include: ['tests/chaos/**/*.test.ts'],
      globalSetup: ['tests/support/global-setup.ts'],
      testTimeout: 600_000,
      hookTimeout: 180_000,
      maxWorkers: 2,
    },
  },
] satisfies TestProjectConfiguration[];
