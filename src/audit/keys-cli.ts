/**
 * `npm run keys:rotate`: retires the active signing key and creates a new one. Packs signed with
 * the old key keep verifying: its public key stays published.
 */
import { runDatabaseCli } from "../db/cli.ts";
import { createPools } from "../db/pools.ts";
import { formatFingerprint, rotateSigningKey } from "./keys.ts";

await runDatabaseCli("keys", async (db, log) => {
  const pools = createPools(db, log);
  try {
    const key = await rotateSigningKey(pools.owner);
    log.info(`New signing key ${formatFingerprint(key.fingerprint)}; the previous one is retired but still published.`);
  } finally {
    await pools.end();
  }
});
