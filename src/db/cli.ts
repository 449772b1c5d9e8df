/**
 * What every database command-line tool does around its own work: read the configuration, set
 * up and migrate the database (starting the embedded one if needed, and stopping it again only
 * if this process started it), report setup and configuration problems as plain messages, and
 * set a failing exit code.
 */
import "../env-defaults.ts";
import { ConfigError, loadConfig } from "../config.ts";
import { createLogger, type Logger } from "../log.ts";
import { bootstrapDatabase } from "./bootstrap.ts";
import { type PreparedDatabase, SetupRequiredError } from "./setup.ts";

export async function runDatabaseCli(
  scope: string,
  work: (db: PreparedDatabase, log: Logger) => Promise<void>,
): Promise<void> {
  const log = createLogger("info", scope);
  let stopEmbedded: (() => Promise<void>) | undefined;
  try {
    const { db } = await bootstrapDatabase(loadConfig(), log, (cluster) => {
      // Leave a server that another Attest process (npm start) is using alone.
      if (cluster.startedHere) stopEmbedded = () => cluster.stop();
    });
    await work(db, log);
  } catch (error) {
    if (error instanceof SetupRequiredError) process.stderr.write(`\n${error.message}\n\n${error.sql}\n\n`);
    else if (error instanceof ConfigError) process.stderr.write(`Configuration error: ${error.message}\n`);
    else log.error(`${scope} failed`, { error: (error as Error).stack ?? String(error) });
    process.exitCode = 1;
  } finally {
    await stopEmbedded?.();
  }
}
