/**
 * `npm run schema:export`: builds the GraphQL schema from a migrated database and writes it,
 * sorted, to schema.graphql (committed; a test fails when it drifts from the migrations).
 */
import "../env-defaults.ts";
import fs from "node:fs/promises";
import pg from "pg";
import { makeSchema } from "postgraphile";
import { lexicographicSortSchema, printSchema } from "postgraphile/graphql";
import { makePreset } from "./index.ts";

export async function printGraphQLSchema(authPool: pg.Pool, visitorRole: string): Promise<string> {
  const { schema } = await makeSchema(makePreset({ authPool, visitorRole }));
  return `${printSchema(lexicographicSortSchema(schema))}\n`;
}

export const schemaFile = new URL("../../schema.graphql", import.meta.url);

if (import.meta.main) {
  const { runDatabaseCli } = await import("../db/cli.ts");
  await runDatabaseCli("schema", async (db, log) => {
    const pool = new pg.Pool({ connectionString: db.authUrl, max: 2 });
    try {
      await fs.writeFile(schemaFile, await printGraphQLSchema(pool, db.roles.visitor));
      log.info(`Wrote ${schemaFile.pathname}`);
    } finally {
      await pool.end();
    }
  });
}
