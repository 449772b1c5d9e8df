import { defineConfig } from "vitest/config";

/**
 * What the tests' results may depend on is pinned here, whatever the machine says: the time zone
 * and locale of this process, and so of every process it starts (test workers, PostgreSQL, Attest,
 * Chromium, pdftotext). The browser pages also pin their own locale and time zone (browser.ts).
 */
const PINNED = { TZ: "UTC", LANG: "C.UTF-8", LC_ALL: "C.UTF-8", LANGUAGE: "" };
Object.assign(process.env, PINNED);

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    globalSetup: ["tests/helpers/global-setup.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Each file creates its own databases on every server; two cores run two files at once.
    maxWorkers: 2,
    env: { ...PINNED, GRAPHILE_ENV: "development" },
  },
});
