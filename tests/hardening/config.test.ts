/**
 * Settings read from the environment: the server's pool size, its default and its refusals.
 */
import { availableParallelism } from "node:os";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../../src/config.ts";

describe("ATTEST_DB_POOL_SIZE", () => {
  it("defaults to twice the CPUs, and is taken as given from 1 to 1000", () => {
    expect(loadConfig({}).serverPoolSize).toBe(2 * availableParallelism());
    expect(loadConfig({ ATTEST_DB_POOL_SIZE: "" }).serverPoolSize).toBe(2 * availableParallelism());
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), (n) => {
        expect(loadConfig({ ATTEST_DB_POOL_SIZE: String(n) }).serverPoolSize).toBe(n);
      }),
    );
  });

  it("refuses anything but a whole number from 1 to 1000, naming the setting and the value", () => {
    const refused = fc.oneof(
      fc.integer({ min: -1000, max: 0 }).map(String),
      fc.integer({ min: 1001 }).map(String),
      fc.double({ noInteger: true, noDefaultInfinity: true, noNaN: true }).map(String),
      fc.string({ minLength: 1 }),
    );
    fc.assert(
      fc.property(refused, (raw) => {
        const value = Number(raw); // what a number is, as the setting reads it (" 7 " and "7e0" are 7)
        fc.pre(!(Number.isInteger(value) && value >= 1 && value <= 1000));
        expect(() => loadConfig({ ATTEST_DB_POOL_SIZE: raw })).toThrow(ConfigError);
        expect(() => loadConfig({ ATTEST_DB_POOL_SIZE: raw })).toThrow(
          `ATTEST_DB_POOL_SIZE must be a whole number from 1 to 1000 (got "${raw}")`,
        );
      }),
    );
  });
});
