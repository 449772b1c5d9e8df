/**
 * The search in a tenant the planner thinks nearly empty (000080): a small tenant among large ones,
 * whose entries the statistics never sampled, is estimated at one row, and every index of the
 * tenant then looks as cheap. Reading people's entries day by day must still read each person's
 * day through an index range, not the whole tenant for each person and day.
 *
 * (Which index the planner takes among equally cheap ones depends on their sizes: on the
 * 10,000,000-entry bench database it took the primary key before 000080; on the 20,300 entries
 * here it takes a range either way. This test bounds what such a search reads in a tenant
 * estimated at one row; bench:pages times the view that showed it.)
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LoadedTenant, loadHistory } from "../../bench/history.ts";
import { withContext } from "../../src/db/context.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";
import { sealAll } from "../helpers/seal.ts";

const PEOPLE = ["owner", "admin", "ana", "ben", "chen", "dora", "emil", "fatima"];

describe.each(servers())("Audit Log search in a small tenant among large ones on $name", (server) => {
  let t: TestDatabase;
  let tiny: LoadedTenant;

  beforeAll(async () => {
    t = await createTestDatabase(server);
    const client = new pg.Client({ connectionString: t.superUrl });
    await client.connect();
    try {
      // The statistics are taken with the large tenant alone (and not again: no autovacuum here).
      await client.query("alter table app_public.audit_log set (autovacuum_enabled = false)");
      await loadHistory(client, { tenants: [{ slug: "wide", name: "Wide", entries: 20_000 }], days: 60 });
      await client.query("analyze app_public.audit_log");
      [tiny] = await loadHistory(client, { tenants: [{ slug: "tiny", name: "Tiny", entries: 300 }], days: 60 });
    } finally {
      await client.end();
    }
    await sealAll(t.pools.owner);
  });
  afterAll(async () => {
    await t?.drop();
  });

  it("reads each person's day through an index range (000080)", async () => {
    // The premise: the planner takes the small tenant for one row.
    const { rows: plan } = await t.superuser.query<{ "QUERY PLAN": Array<{ Plan: { "Plan Rows": number } }> }>(
      `explain (format json) select * from app_public.audit_log where tenant_id = '${tiny.id}'`,
    );
    expect(plan[0]["QUERY PLAN"][0].Plan["Plan Rows"]).toBe(1);

    const actors = PEOPLE.map((p) => `${p}@tiny.test`);
    const actions = ["evidence.uploaded", "incident.updated"];
    // The days on which those people took those actions: each is read, one range per person.
    const { rows: days } = await t.superuser.query<{ n: number; entries: number }>(
      `select count(distinct day)::int as n, coalesce(sum(entries), 0)::int as entries
       from app_private.audit_activity_daily where tenant_id = $1 and actor_label = any ($2) and action = any ($3)`,
      [tiny.id, actors, actions],
    );
    expect(days[0].n).toBeGreaterThan(10);

    // As the small tenant's admin (its API token), as the server reads.
    const filter = JSON.stringify({ actors, actions, pattern: "%qqzx%", fields: "label" });
    const { plan: read, found } = await withContext(
      t.pools.auth,
      { role: t.db.roles.visitor, apiToken: tiny.apiToken, surface: "sql" },
      async (client) => ({
        // A word found in no name: the search's first stretch reads those people's entries of the
        // actions day by day (the days of the daily counts), none matching.
        plan: await client.query<{ "QUERY PLAN": Array<{ Plan: Record<string, number> }> }>(
          "explain (analyze, buffers, format json) select * from app_hidden.audit_find($1::jsonb, null, null, false, 25)",
          [filter],
        ),
        found: await client.query("select * from app_hidden.audit_find($1::jsonb, null, null, false, 25)", [filter]),
      }),
    );
    // Nothing matches: only the marker of where the stream stopped, if any.
    expect(found.rows.filter((r) => !r.scan_end)).toEqual([]);
    const node = read.rows[0]["QUERY PLAN"][0].Plan;
    const buffers = node["Shared Hit Blocks"] + node["Shared Read Blocks"];
    // Through the tenant's primary key, each person's day read the tenant's 300 entries (at least
    // 300 buffers a person and day); through a range, a few index pages and the day's entries.
    const personDays = days[0].n * actors.length;
    expect(buffers).toBeLessThan(personDays * 20 + days[0].entries * 4);
  });
});
