/**
 * `npm run migrate`: sets up (roles, database) and migrates DATABASE_URL, then exits.
 * Without DATABASE_URL it migrates the embedded PostgreSQL.
 */
import { runDatabaseCli } from "./cli.ts";

await runDatabaseCli("migrate", async (db, log) => {
  log.info(`Database ${db.databaseName} is migrated (roles: ${Object.values(db.roles).join(", ")})`);
});
