/**
 * A GraphQL page found through app_hidden.audit_connection_ids (a searching condition) is planned
 * with its values each time: its statement is never prepared on the server's connection, where
 * PostgreSQL would go over to a generic plan after five runs (one that reads a person's entries of
 * a window instead of the page's entries by their numbers: 65 ms instead of 8 in the bench's big
 * tenant). The plain pages stay prepared. Checked on the server's one connection, whose prepared
 * statements are listed in pg_prepared_statements.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LoadedTenant, loadHistory } from "../../bench/history.ts";
import { plannedEachTime } from "../../src/graphql/audit-log.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";
import { sealAll } from "../helpers/seal.ts";
import { type OneConnectionServer, startOneConnectionServer } from "../helpers/server.ts";

describe.each(servers())("GraphQL statements with a searching condition on $name", (server) => {
  let t: TestDatabase;
  let tenant: LoadedTenant;
  let web: OneConnectionServer;

  beforeAll(async () => {
    t = await createTestDatabase(server);
    const client = new pg.Client({ connectionString: t.superUrl });
    await client.connect();
    try {
      [tenant] = await loadHistory(client, { tenants: [{ slug: "plans", name: "Plans", entries: 1500 }], days: 30 });
    } finally {
      await client.end();
    }
    await sealAll(t.pools.owner);
    web = await startOneConnectionServer(t);
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  it("runs a searching page unnamed however often it is asked, and keeps a plain page prepared", async () => {
    const searching = `{ auditLogs(first: 25, orderBy: OLDEST_FIRST, condition: { resourceLabelContains: "e", actorContains: "@" }) {
      nodes { rowId } } }`;
    const plain = "{ auditLogs(first: 25) { nodes { rowId } } }";
    let found = 0;
    for (let i = 0; i < 8; i++) {
      const page = await web.gql<{ auditLogs: { nodes: unknown[] } }>(searching, { token: tenant.apiToken });
      expect(page.errors).toBeUndefined();
      found += page.data?.auditLogs.nodes.length ?? 0;
      const plainPage = await web.gql<{ auditLogs: { nodes: unknown[] } }>(plain, { token: tenant.apiToken });
      expect(plainPage.data?.auditLogs.nodes).toHaveLength(25);
    }
    expect(found).toBe(8 * 25);
    const { rows } = await web.pool.query<{ statement: string }>("select statement from pg_prepared_statements");
    const statements = rows.map((r) => r.statement);
    expect(statements.some((s) => s.includes('from "app_public"."audit_log"'))).toBe(true);
    expect(statements.filter((s) => s.includes("audit_connection_ids"))).toEqual([]);
    expect(statements.filter(plannedEachTime)).toEqual([]);
  });
});
