/**
 * The Audit Log page's statements are prepared once per connection for each kind of position
 * (newest, a cursor, a date), whatever the cursor: paging older and older does not parse and plan
 * a statement of its own for each page, nor fill the connection's prepared statements (at most
 * 100, after which new statements run unprepared). Checked on the server's one connection, whose
 * prepared statements are listed in pg_prepared_statements.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { type OneConnectionServer, startOneConnectionServer } from "../helpers/server.ts";

describe.each(servers())("the Audit Log page's statements on $name", (server) => {
  let t: TestDatabase;
  let web: OneConnectionServer;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startOneConnectionServer(t);
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  it("pages through the whole log with one prepared statement for every cursor", async () => {
    const owner = await web.signIn("owner@demo.test");
    const demo = (await ids(t)).tenants.demo;
    const { rows: all } = await t.superuser.query<{ id: string }>(
      "select id::text as id from app_public.audit_log where tenant_id = $1 order by occurred_at desc, id desc",
      [demo],
    );
    expect(all.length).toBeGreaterThan(100);
    const seen: string[] = [];
    let path: string | undefined = "/t/demo/audit";
    let pages = 0;
    while (path) {
      const response = await fetch(`${web.url}${path}`, { headers: { Cookie: owner } });
      expect(response.status).toBe(200);
      const html = await response.text();
      pages++;
      seen.push(
        ...[...html.matchAll(/<details class="log-entry" role="rowgroup" data-entry="(\d+)"/g)].map((m) => m[1]),
      );
      path = html.match(/href="([^"]*[?&]before=[^"]*)"/)?.[1].replaceAll("&amp;", "&");
    }
    // Every entry once, newest first.
    expect(seen).toEqual(all.map((r) => r.id));
    expect(pages).toBe(Math.ceil(all.length / 25));
    const { rows } = await web.pool.query<{ statement: string }>(
      "select statement from pg_prepared_statements where statement like '%audit_find(%'",
    );
    // The newest page's statement and the one every cursor shares.
    expect(rows).toHaveLength(2);
  });
});
