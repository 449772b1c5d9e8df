/**
 * `npm run migrate`: sets up (roles, database) and migrates DATABASE_URL, then exits.
 * Without DATABASE_URL it migrates the embedded PostgreSQL and stops it again.
 */
import { ConfigError, loadConfig } from "../config.ts";
import { createLogger } from "../log.ts";
import { bootstrapDatabase } from "./bootstrap.ts";
import { SetupRequiredError } from "./setup.ts";

const log = createLogger("info", "migrate");
let stopEmbedded: (() => Promise<void>) | undefined;
try {
  const config = loadConfig();
  const { db } = await bootstrapDatabase(config, log, (cluster) => {
    // Leave a server that another Attest process (npm start) is using alone.
    if (cluster.startedHere) stopEmbedded = () => cluster.stop();
  });
  log.info(`Database ${db.databaseName} is migrated (roles: ${Object.values(db.roles).join(", ")})`);
} catch (error) {
  if (error instanceof SetupRequiredError) process.stderr.write(`\n${error.message}\n\n${error.sql}\n\n`);
  else if (error instanceof ConfigError) process.stderr.write(`Configuration error: ${error.message}\n`);
  else log.error("Migration failed", { error: (error as Error).stack ?? String(error) });
  process.exitCode = 1;
} finally {
  await stopEmbedded?.();
}
