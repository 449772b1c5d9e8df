/**
 * `npm run seed`: seeds the demo workspace into DATABASE_URL (or the embedded PostgreSQL).
 * Does nothing when the `demo` tenant already exists.
 */
import { ConfigError, loadConfig } from "../config.ts";
import { createLogger } from "../log.ts";
import { bootstrapDatabase } from "./bootstrap.ts";
import { createPools } from "./pools.ts";
import { seedDemoWorkspace } from "./seed.ts";
import { SetupRequiredError } from "./setup.ts";

const log = createLogger("info", "seed");
let stopEmbedded: (() => Promise<void>) | undefined;
try {
  const config = loadConfig();
  const { db } = await bootstrapDatabase(config, log, (cluster) => {
    // Leave a server that another Attest process (npm start) is using alone.
    if (cluster.startedHere) stopEmbedded = () => cluster.stop();
  });
  const pools = createPools(db, log);
  try {
    const seeded = await seedDemoWorkspace({
      owner: pools.owner,
      auth: pools.auth,
      visitorRole: db.roles.visitor,
      log: (m) => log.info(m),
    });
    if (!seeded) log.info("The demo workspace already exists; nothing to do");
  } finally {
    await pools.end();
  }
} catch (error) {
  if (error instanceof SetupRequiredError) process.stderr.write(`\n${error.message}\n\n${error.sql}\n\n`);
  else if (error instanceof ConfigError) process.stderr.write(`Configuration error: ${error.message}\n`);
  else log.error("Seeding failed", { error: (error as Error).stack ?? String(error) });
  process.exitCode = 1;
} finally {
  await stopEmbedded?.();
}
