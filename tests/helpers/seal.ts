/**
 * Sealing in tests: runs the sealer's rounds (as the worker would) until nothing is pending,
 * signing checkpoints with the installation's key of the test database.
 */
import type pg from "pg";
import { activeSigningKey } from "../../src/audit/keys.ts";
import { nameOnce, type SealResult, sealOnce } from "../../src/audit/sealer.ts";

export const TEST_ORIGIN = "attest.test";

/** Seals every committed entry (and keeps their names for the search); returns how many were sealed. */
export async function sealAll(owner: pg.Pool): Promise<number> {
  const key = await activeSigningKey(owner);
  let total = 0;
  let round: SealResult;
  do {
    round = await sealOnce(owner, { key, originPrefix: TEST_ORIGIN, maxEntries: 10_000 });
    total += round.sealed;
  } while (round.sealed > 0);
  // And the names the search reads, as the worker keeps them after sealing.
  while ((await nameOnce(owner, 10_000)) > 0);
  return total;
}
