/**
 * SQL reporting: a DBA's login in the reporting role reads the documented views across tenants,
 * and nothing else. The README's example queries are run exactly as written.
 */
import { createPublicKey } from "node:crypto";
import fs from "node:fs/promises";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { keyIdOf, parseCheckpoint } from "../../src/audit/checkpoint.ts";
import { createLogin, createTestDatabase, servers, sqlState, type TestDatabase } from "../helpers/db.ts";

/** Every ```sql block in the README's "## SQL reporting" section. */
async function readmeReportingQueries(): Promise<string[]> {
  const readme = await fs.readFile(new URL("../../README.md", import.meta.url), "utf8");
  const section = readme.split(/^## /m).find((s) => s.startsWith("SQL reporting"));
  if (!section) throw new Error('README.md has no "## SQL reporting" section');
  return [...section.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1].trim());
}

describe.each(servers())("reporting role on $name", (server) => {
  let t: TestDatabase;
  let dba: pg.Pool;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    dba = new pg.Pool({ connectionString: await createLogin(t, "dba", t.db.roles.reporting), max: 2 });
    dba.on("error", () => {}); // idle connections end when the test database is dropped
  });
  afterAll(async () => {
    await dba?.end();
    await t?.drop();
  });

  it("reads every reporting view", async () => {
    const entries = await dba.query(
      "select tenant_slug, count(*)::int as n from reporting.audit_entries group by 1 order by 1",
    );
    expect(entries.rows.map((r) => r.tenant_slug)).toEqual(["basic", "demo"]);
    expect(entries.rows[1].n).toBeGreaterThan(100);
    const daily = await dba.query(
      "select sum(entries)::int as n from reporting.activity_daily where tenant_slug = 'demo'",
    );
    expect(daily.rows[0].n).toBe(entries.rows[1].n);
    const incidents = await dba.query(
      "select tenant_slug, count(*)::int as n, count(*) filter (where deleted_at is null)::int as live from reporting.incidents group by 1 order by 1",
    );
    const { rows: stored } = await t.superuser.query(
      `select t.slug as tenant_slug, count(*)::int as n, count(*) filter (where i.deleted_at is null)::int as live
       from app_public.incidents i join app_public.tenants t on t.id = i.tenant_id group by 1 order by 1`,
    );
    expect(incidents.rows).toEqual(stored);
    const tenants = await dba.query("select tenant_slug, plan, members from reporting.tenants order by 1");
    expect(tenants.rows).toMatchObject([
      { tenant_slug: "basic", plan: "basic", members: "2" },
      { tenant_slug: "demo", plan: "business", members: "4" },
    ]);
    // Reading chain_status verifies nothing: it shows the latest recorded verification.
    const unchecked = await dba.query("select tenant_slug, valid, checked_at from reporting.chain_status order by 1");
    expect(unchecked.rows.map((r) => [r.tenant_slug, r.valid, r.checked_at])).toEqual([
      ["basic", null, null],
      ["demo", null, null],
    ]);
    await t.superuser.query("select app_private.record_chain_verifications()");
    const chains = await dba.query("select tenant_slug, valid from reporting.chain_status order by 1");
    expect(chains.rows).toEqual([
      { tenant_slug: "basic", valid: true },
      { tenant_slug: "demo", valid: true },
    ]);
  });

  it("gives each checkpoint's root hash in hex and the key ID of its signed note", async () => {
    const { rows } = await dba.query(
      "select tenant_id, tree_size, root_hash, note, key_fingerprint, key_id from reporting.audit_checkpoints where tenant_slug = 'demo'",
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      const note = parseCheckpoint(row.note);
      expect(row.root_hash).toBe(note.rootHash.toString("hex"));
      expect(row.root_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(row.key_id).toBe(note.signatures[0].keyId.toString("hex"));
      const key = await t.superuser.query<{ public_key_pem: string }>(
        "select public_key_pem from app_private.signing_keys where fingerprint = $1",
        [row.key_fingerprint],
      );
      expect(row.key_id).toBe(keyIdOf(note.origin, createPublicKey(key.rows[0].public_key_pem)).toString("hex"));
    }
  });

  it("runs the README's example queries as written", async () => {
    const queries = await readmeReportingQueries();
    expect(queries.length).toBeGreaterThanOrEqual(5);
    for (const sql of queries) {
      const result = await dba.query(sql);
      expect(result.rows.length, sql).toBeGreaterThan(0);
    }
  });

  it("may only read the reporting views", async () => {
    const { rows } = await dba.query(
      `select c.relname, has_table_privilege(c.oid, 'select') as sel,
              has_table_privilege(c.oid, 'insert') or has_table_privilege(c.oid, 'update')
              or has_table_privilege(c.oid, 'delete') or has_table_privilege(c.oid, 'truncate') as write
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where n.nspname = 'reporting' order by 1`,
    );
    expect(rows).toEqual(
      [
        "activity_daily",
        "actor_activity_daily",
        "audit_checkpoints",
        "audit_entries",
        "chain_status",
        "chain_verifications",
        "incidents",
        "tenants",
      ].map((relname) => ({
        relname,
        sel: true,
        write: false,
      })),
    );
    expect(await sqlState(dba.query("delete from reporting.audit_entries"))).not.toBe("ok");
  });

  it.each([
    "select * from app_public.audit_log limit 1",
    "select * from app_public.incidents limit 1",
    "select * from app_public.users limit 1",
    "select * from app_private.sessions limit 1",
    "select * from app_private.user_secrets limit 1",
    "select app_public.current_user_id()",
    "select app_private.canonical_json('{}'::jsonb)",
    "create table reporting.mine (x int)",
    "create table public.mine (x int)",
  ])("is refused: %s", async (sql) => {
    expect(await sqlState(dba.query(sql))).toBe("42501");
  });
});
