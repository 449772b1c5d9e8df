/**
 * Bootstrap: picks the database (DATABASE_URL, or the embedded PostgreSQL under the data
 * directory), then sets it up and migrates it. Shared by `npm start` and `npm run migrate`.
 */
import type { Config } from "../config.ts";
import type { Logger } from "../log.ts";
import { type EmbeddedCluster, startEmbeddedPostgres } from "./embedded.ts";
import { type PreparedDatabase, prepareDatabase } from "./setup.ts";

export const EMBEDDED_DATABASE = "attest";

export interface Bootstrapped {
  db: PreparedDatabase;
  /** Set when Attest runs its own PostgreSQL; stop it on shutdown. */
  embedded?: EmbeddedCluster;
}

export async function bootstrapDatabase(
  config: Config,
  log: Logger,
  onEmbeddedStarted?: (cluster: EmbeddedCluster) => void,
): Promise<Bootstrapped> {
  let embedded: EmbeddedCluster | undefined;
  let adminUrl = config.databaseUrl;
  if (!adminUrl) {
    embedded = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      port: config.embeddedPgPort,
      log: (m) => log.info(m),
    });
    onEmbeddedStarted?.(embedded);
    adminUrl = embedded.url(EMBEDDED_DATABASE);
  }
  const db = await prepareDatabase({
    adminUrl,
    authUrl: config.authDatabaseUrl,
    rolePrefix: config.roleprefix,
    log: (m) => log.info(m),
  });
  return { db, embedded };
}
