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
  const { loadConfig } = await import("../config.ts");
  const { bootstrapDatabase } = await import("../db/bootstrap.ts");
  const { createLogger } = await import("../log.ts");
  const log = createLogger("warn", "schema");
  let stop: (() => Promise<void>) | undefined;
  try {
    const { db } = await bootstrapDatabase(loadConfig(), log, (cluster) => {
      if (cluster.startedHere) stop = () => cluster.stop();
    });
    const pool = new pg.Pool({ connectionString: db.authUrl, max: 2 });
    try {
      await fs.writeFile(schemaFile, await printGraphQLSchema(pool, db.roles.visitor));
      process.stdout.write(`Wrote ${schemaFile.pathname}\n`);
    } finally {
      await pool.end();
    }
  } finally {
    await stop?.();
  }
}
