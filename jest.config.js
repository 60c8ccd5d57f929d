// Unit tests need no service; integration and scenario tests share one real stack that
// test/setup/global-setup.ts finds or starts (see README "Tests").
const transform = { '^.+\\.ts$': ['@swc/jest', { jsc: { target: 'es2022' } }] };

/** @type {import('jest').Config} */
module.exports = {
  // Integration tests start processors and child processes against one local broker on a
  // 2-core machine: run files one at a time so their timings stay honest.
  maxWorkers: 1,
  // Every test's name in the output, so a CI log shows what ran against the real services.
  verbose: true,
  testTimeout: 120000,
  projects: [
    { displayName: 'unit', testMatch: ['<rootDir>/test/unit/**/*.test.ts'], transform },
    {
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts', '<rootDir>/test/scenarios/**/*.test.ts'],
      transform,
      globalSetup: '<rootDir>/test/setup/global-setup.ts',
      globalTeardown: '<rootDir>/test/setup/global-teardown.ts',
    },
  ],
};
