/**
 * The Audit Log export streams any size in constant memory: 200,000 entries (1,000,000 with
 * `npm run bench:export`) exported as CSV through the HTTP server (in this process), while the
 * server's heap and RSS are sampled. A buffered export would hold the whole file (45 MiB here,
 * 220 MiB at a million); a streamed one holds a batch or two.
 *
 * The entries are made through a bulk path: one INSERT of a million rows straight into the log by
 * a superuser with triggers off (session_replication_role = replica), which only a superuser can
 * do, after dropping the log's secondary indexes in this throwaway database (the export reads the
 * log by its primary key; maintaining its indexes over a million rows would take minutes). The
 * entries are left pending (not sealed): the export does not need positions. Runs on
 * PostgreSQL 18 (the server `npm start` runs) to stay within a minute. The heap is measured after
 * a forced garbage collection, so what it shows is what the server retains.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, mainServer, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

/** 200,000 in the suite (under a minute); `npm run bench:export` runs it with 1,000,000. */
const ENTRIES = Number(process.env.ATTEST_EXPORT_ENTRIES ?? 200_000);

/** A forced full garbage collection (V8's gc(), made available at run time). */
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

describe("audit log export at scale", () => {
  let t: TestDatabase;
  let web: TestServer;
  let total: number;

  beforeAll(async () => {
    t = await createTestDatabase(mainServer(), { seed: true });
    const started = performance.now();
    const client = await t.superuser.connect();
    try {
      await client.query("begin");
      await client.query("set local session_replication_role = replica");
      await client.query(
        `drop index app_public.audit_log_tenant_time_idx, app_public.audit_log_tenant_action_idx,
                    app_public.audit_log_tenant_actor_idx, app_public.audit_log_tenant_label_idx`,
      );
      await client.query(
        `insert into app_public.audit_log (tenant_id, id, xid, occurred_at, actor_label, db_role, action, resource_type,
                                           resource_id, resource_label, changes, surface)
         select t.id, nextval('app_private.audit_entry_id_seq'), pg_current_xact_id()::text::bigint,
                now() - make_interval(secs => g), 'bulk@demo.test', 'bulk', 'incident.updated', 'incident',
                gen_random_uuid(), 'Bulk entry ' || g, '{"severity": {"old": "low", "new": "high"}}', 'sql'
         from app_public.tenants t, generate_series(1, ${ENTRIES}) g where t.slug = 'demo'`,
      );
      await client.query("commit");
      await client.query("analyze app_public.audit_log"); // as autovacuum would after such a load
    } finally {
      client.release();
    }
    console.info(`bulk path: ${ENTRIES} entries in ${((performance.now() - started) / 1000).toFixed(1)} s`);
    web = await startTestServer(t);
  }, 600_000);
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  it(`exports ${ENTRIES.toLocaleString("en")} entries as CSV with bounded server memory, and records the export once`, async () => {
    const owner = await web.signIn("owner@demo.test");
    total = (
      await t.superuser.query<{ n: number }>(
        "select count(*)::int as n from app_public.audit_log e join app_public.tenants t on t.id = e.tenant_id where t.slug = 'demo'",
      )
    ).rows[0].n;
    const started = performance.now();
    const response = await fetch(`${web.url}/t/demo/audit/export.csv`, { headers: { Cookie: owner } });
    expect(response.status).toBe(200);
    expect(Number(response.headers.get("x-export-entries"))).toBe(total);

    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    let bytes = 0;
    let newlines = 0;
    let baseline: { heap: number; rss: number } | null = null;
    let peak = { heap: 0, rss: 0 };
    let tail = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      bytes += value.length;
      for (let i = 0; i < value.length; i++) if (value[i] === 10) newlines++;
      tail = (tail + Buffer.from(value.subarray(Math.max(0, value.length - 400))).toString("utf8")).slice(-400);
      // Every ~16 MiB: what the process retains after a full collection.
      if (Math.floor(bytes / (16 * 1024 * 1024)) !== Math.floor((bytes - value.length) / (16 * 1024 * 1024))) {
        gc();
        const m = process.memoryUsage();
        if (!baseline) baseline = { heap: m.heapUsed, rss: m.rss };
        peak = { heap: Math.max(peak.heap, m.heapUsed), rss: Math.max(peak.rss, m.rss) };
      }
    }
    // One header line and one line per entry (no field of these entries holds a line break).
    expect(newlines).toBe(total + 1);
    expect(bytes).toBeGreaterThan(ENTRIES * 150);
    // Newest first (the page's order: time, then capture number): the tenant's oldest entry ends the file.
    const oldest = await t.superuser.query(
      "select e.id::text as id from app_public.audit_log e join app_public.tenants t on t.id = e.tenant_id where t.slug = 'demo' order by e.occurred_at, e.id limit 1",
    );
    expect(tail.trimEnd().split("\n").pop()?.split(",")[1]).toBe(oldest.rows[0].id);
    expect(baseline).not.toBeNull();
    const growth = { heap: peak.heap - (baseline?.heap ?? 0), rss: peak.rss - (baseline?.rss ?? 0) };
    const seconds = (performance.now() - started) / 1000;
    console.info(
      `export of ${total} entries: ${(bytes / 1024 / 1024).toFixed(0)} MiB in ${seconds.toFixed(1)} s (${Math.round(total / seconds)} entries/s); server heap growth ${(growth.heap / 1024 / 1024).toFixed(1)} MiB, RSS growth ${(growth.rss / 1024 / 1024).toFixed(1)} MiB`,
    );
    // The export is 45 MiB (220 MiB at a million): holding it, or a good part of it, would show here.
    expect(growth.heap).toBeLessThan(16 * 1024 * 1024);
    expect(growth.rss).toBeLessThan(96 * 1024 * 1024);

    const recorded = await t.superuser.query(
      "select changes from app_public.audit_log where action = 'audit_log.exported' order by id",
    );
    expect(recorded.rows).toEqual([
      { changes: { format: { new: "csv" }, filters: { new: {} }, entries: { new: total } } },
    ]);
  }, 600_000);
});
