/**
 * Tamper evidence: each tenant's entries form a gapless hash chain; app_public.verify_audit_chain
 * recomputes it and names the first broken entry. Superuser tampering (with triggers disabled
 * through session_replication_role) is done inside a transaction that is rolled back.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withContext } from "../../src/db/context.ts";
import { createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";

interface Verdict {
  valid: boolean;
  entries: string;
  last_seq: string;
  first_invalid_seq: string | null;
  problem: string | null;
}

describe.each(servers())("hash chain on $name", (server) => {
  let t: TestDatabase;
  let demo: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    demo = (await ids(t)).tenants.demo;
  });
  afterAll(async () => {
    await t?.drop();
  });

  /** Tampers as a superuser with triggers off, verifies in the same transaction, rolls back. */
  async function tamper(sql: string[]): Promise<Verdict> {
    const client = new pg.Client({ connectionString: t.superUrl });
    await client.connect();
    try {
      await client.query("begin");
      await client.query("set local session_replication_role = replica");
      for (const statement of sql) await client.query(statement, [demo]);
      const { rows } = await client.query<Verdict>("select * from app_public.verify_audit_chain($1)", [demo]);
      return rows[0];
    } finally {
      await client.query("rollback");
      await client.end();
    }
  }

  it("verifies the seeded chains of every tenant", async () => {
    const { rows } = await t.superuser.query(
      "select t.slug, v.* from app_public.tenants t cross join lateral app_public.verify_audit_chain(t.id) v order by slug",
    );
    expect(rows.map((r) => [r.slug, r.valid, r.problem])).toEqual([
      ["basic", true, null],
      ["demo", true, null],
    ]);
    const { rows: counts } = await t.superuser.query(
      "select count(*)::int as n, max(seq)::int as max, min(seq)::int as min from app_public.audit_log where tenant_id = $1",
      [demo],
    );
    expect(counts[0]).toEqual({ n: counts[0].max, max: counts[0].max, min: 1 });
  });

  it("catches an edited entry at that entry", async () => {
    const v = await tamper([
      "update app_public.audit_log set resource_label = 'innocent' where tenant_id = $1 and seq = 10",
    ]);
    expect(v).toMatchObject({ valid: false, first_invalid_seq: "10" });
    expect(v.problem).toMatch(/entry 10 was altered/);
  });

  it("catches an edit whose hash was recomputed, at the next entry's link", async () => {
    const v = await tamper([
      "update app_public.audit_log set resource_label = 'innocent' where tenant_id = $1 and seq = 10",
      "update app_public.audit_log e set hash = app_private.audit_hash(e) where tenant_id = $1 and seq = 10",
    ]);
    expect(v).toMatchObject({ valid: false, first_invalid_seq: "11" });
    expect(v.problem).toMatch(/entry 11 does not link to entry 10/);
  });

  it("catches a deleted entry", async () => {
    const v = await tamper(["delete from app_public.audit_log where tenant_id = $1 and seq = 10"]);
    expect(v).toMatchObject({ valid: false, first_invalid_seq: "10" });
    expect(v.problem).toMatch(/entry 10 is missing/);
  });

  it("catches two swapped entries at the first of them", async () => {
    const v = await tamper([
      "update app_public.audit_log set seq = -10 where tenant_id = $1 and seq = 10",
      "update app_public.audit_log set seq = 10 where tenant_id = $1 and seq = 11",
      "update app_public.audit_log set seq = 11 where tenant_id = $1 and seq = -10",
    ]);
    expect(v).toMatchObject({ valid: false, first_invalid_seq: "10" });
  });

  it("catches entries removed from the end", async () => {
    const v = await tamper([
      "delete from app_public.audit_log where tenant_id = $1 and seq = (select max(seq) from app_public.audit_log where tenant_id = $1)",
    ]);
    expect(v.valid).toBe(false);
    expect(v.problem).toMatch(/entries were removed from the end/);
  });

  it("keeps gapless, valid chains under concurrent writers in several tenants", async () => {
    const tenants: string[] = [];
    for (const slug of ["conc-a", "conc-b", "conc-c"]) {
      const { rows } = await t.superuser.query(
        "insert into app_public.tenants (slug, name, plan_id) values ($1, $1, 'business') returning id",
        [slug],
      );
      tenants.push(rows[0].id);
    }
    const writers = Array.from({ length: 8 }, (_, w) =>
      (async () => {
        for (let i = 0; i < 15; i++) {
          const tenant = tenants[(w + i) % tenants.length];
          await withContext(t.pools.owner, { surface: "sql" }, async (c) => {
            const { rows } = await c.query(
              "insert into app_public.incidents (tenant_id, title) values ($1, $2) returning id",
              [tenant, `w${w}-${i}`],
            );
            await c.query("update app_public.incidents set status = 'in_progress' where tenant_id = $1 and id = $2", [
              tenant,
              rows[0].id,
            ]);
          });
        }
      })(),
    );
    await Promise.all(writers);
    const { rows } = await t.superuser.query(
      `select v.*, (select count(*) from app_public.audit_log e where e.tenant_id = t.id)::int as n
       from app_public.tenants t cross join lateral app_public.verify_audit_chain(t.id) v where t.id = any($1::uuid[])`,
      [tenants],
    );
    expect(rows.map((r) => r.valid)).toEqual([true, true, true]);
    // 1 tenant.created + 2 entries per write; 8 writers × 15 writes spread over 3 tenants.
    expect(rows.reduce((sum, r) => sum + r.n, 0)).toBe(3 + 8 * 15 * 2);
    for (const r of rows) expect(Number(r.last_seq)).toBe(r.n);
  });
});
