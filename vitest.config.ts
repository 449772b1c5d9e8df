import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    globalSetup: ["tests/helpers/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Each file creates its own databases on both servers; two cores run two files at once.
    maxWorkers: 2,
    env: { GRAPHILE_ENV: "development" },
  },
});
