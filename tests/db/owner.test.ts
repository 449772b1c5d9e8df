/**
 * The owner role cannot write history. The audit path is read from the catalog
 * (attest_guard.audit_path(): the log's tables, the audited tables, every function on the way),
 * and every way the owner could add an entry no captured change produced, suppress capture,
 * change what the sealer or the read policy relies on, or make an entry name another actor is
 * tried, logged in as the owner itself (as a DBA-managed install would), and refused.
 */
import { createHash, randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readActiveSigningKey } from "../../src/audit/keys.ts";
import { sealOnce } from "../../src/audit/sealer.ts";
import { guardSql } from "../../src/db/guard.ts";
import { createTestDatabase, ids, servers, sqlState, type TestDatabase } from "../helpers/db.ts";
import { sealAll, TEST_ORIGIN } from "../helpers/seal.ts";

interface PathItem {
  kind: "function" | "log table" | "reporting view" | "audited table";
  identity: string;
}

describe.each(servers())("the owner role on $name", (server) => {
  let t: TestDatabase;
  let owner: pg.Client;
  let path: PathItem[];
  let demo: string;

  const entries = async () =>
    (await t.superuser.query("select count(*)::int as n from app_public.audit_log")).rows[0].n as number;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    demo = (await ids(t)).tenants.demo;
    await t.superuser.query(`alter role "${t.db.roles.owner}" login password 'owner-pw'`);
    const url = new URL(t.superUrl);
    url.username = t.db.roles.owner;
    url.password = "owner-pw";
    owner = new pg.Client({ connectionString: url.toString() });
    await owner.connect();
    path = (await owner.query<PathItem>("select kind, identity from attest_guard.audit_path() order by 1, 2")).rows;
  });
  afterAll(async () => {
    await owner?.end();
    await t?.drop();
  });

  /** Runs `sql` as the owner inside a transaction that is rolled back; returns the SQLSTATE. */
  async function asOwner(sql: string): Promise<string> {
    await owner.query("begin");
    try {
      return await sqlState(owner.query(sql));
    } finally {
      await owner.query("rollback");
    }
  }

  it("finds the audit path in the catalog: the log, the audited tables and the functions they rely on", () => {
    const names = (kind: string) => path.filter((p) => p.kind === kind).map((p) => p.identity);
    expect(names("log table")).toEqual(
      expect.arrayContaining([
        "app_public.audit_log",
        "app_hidden.audit_leaves",
        "app_public.audit_checkpoints",
        "app_private.audit_trees",
        "app_private.audit_seal_state",
        "app_private.audit_activity_hourly",
        "app_private.audit_activity_hours",
        "app_private.audit_activity_daily",
        "app_private.audit_label_days",
        "app_private.audit_label_state",
        "app_private.audit_label_chars",
        "app_private.audit_label_trigram_months",
        "app_private.audit_surface_days",
        "app_private.audit_actor_chars",
        "app_private.audit_label_char_days",
        "app_private.audit_label_pair_days",
        "app_private.chain_verifications",
      ]),
    );
    expect(names("reporting view")).toEqual(
      expect.arrayContaining([
        "reporting.audit_entries",
        "reporting.activity_daily",
        "reporting.actor_activity_daily",
        "reporting.audit_checkpoints",
        "reporting.chain_status",
        "reporting.chain_verifications",
      ]),
    );
    expect(names("audited table")).toEqual(
      expect.arrayContaining([
        "app_public.incidents",
        "app_public.evidence",
        "app_public.webhooks",
        "app_public.tenants",
      ]),
    );
    // Capture, attribution, sealing and the read policy's helpers are all on it.
    expect(names("function")).toEqual(
      expect.arrayContaining([
        "app_private.tg__audit()",
        "app_public.current_user_id()",
        "app_hidden.current_api_token()",
        "app_public.current_tenant_id()",
        "app_hidden.audit_log_readable()",
        "app_private.seal_audit_entries(integer)",
        "app_private.name_audit_entries(integer)",
        "app_private.audit_entry_body(app_public.audit_log)",
        "app_private.verify_audit_log(uuid)",
      ]),
    );
  });

  it("may not drop or alter an index of the log's tables (the owner of their schemas otherwise could)", async () => {
    const { rows } = await t.superuser.query<{ index: string }>(
      `select i.indexrelid::regclass::text as index from pg_index i
       where i.indrelid = any (select oid from attest_guard.audit_path() where kind = 'log table')
         and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)`,
    );
    expect(rows.map((r) => r.index)).toEqual(
      expect.arrayContaining(["app_public.audit_log_tenant_time_idx", "app_private.audit_activity_hourly_action_idx"]),
    );
    for (const { index } of rows) {
      for (const sql of [`drop index ${index}`, `alter index ${index} rename to forged`]) {
        expect(await asOwner(sql), sql).toBe("42501");
      }
    }
  });

  it("may not replace, rename, re-own or drop any function on the path", async () => {
    const functions = path.filter((p) => p.kind === "function");
    expect(functions.length).toBeGreaterThan(30);
    for (const f of functions) {
      for (const sql of [
        `alter function ${f.identity} rename to forged`,
        `alter function ${f.identity} owner to "${t.db.roles.owner}"`,
        `alter function ${f.identity} security invoker`,
        `drop function ${f.identity} cascade`,
      ]) {
        expect(await asOwner(sql), sql).toBe("42501");
      }
    }
    // CREATE OR REPLACE with the same signature, e.g. attribution that names someone else:
    expect(
      await asOwner(
        "create or replace function app_public.current_user_id() returns uuid language sql stable as $$ select null::uuid $$",
      ),
    ).toBe("42501");
  });

  it("may not switch capture off, detach, rename, drop or truncate any audited table", async () => {
    const tables = path.filter((p) => p.kind === "audited table").map((p) => p.identity);
    for (const table of tables) {
      for (const sql of [
        `alter table ${table} disable trigger _500_audit_insert`,
        `alter table ${table} disable trigger _500_audit_update`,
        `alter table ${table} disable trigger _500_audit_delete`,
        `alter table ${table} disable trigger all`,
        `alter table ${table} disable trigger user`,
        `alter table ${table} enable replica trigger _500_audit_insert`,
        `drop trigger _500_audit_delete on ${table}`,
        `drop trigger _000_no_truncate on ${table}`,
        `create trigger _499_twin after insert on ${table} referencing new table as new_rows for each statement execute function app_private.tg__audit('incident')`,
        `create rule swallow as on delete to ${table} do instead nothing`,
        `alter table ${table} rename to renamed_away`,
        `truncate ${table} cascade`,
        `drop table ${table} cascade`,
      ]) {
        expect(await asOwner(sql), sql).toBe("42501");
      }
    }
  });

  it("may not write, change or take over the log's tables", async () => {
    const before = await entries();
    for (const sql of [
      `insert into app_public.audit_log (tenant_id, id, xid, occurred_at, actor_label, db_role, action, resource_type, surface)
         values ('${demo}', 999999999, pg_current_xact_id()::text::bigint, now(), 'ceo@demo.test', 'x', 'incident.deleted', 'incident', 'web')`,
      "update app_public.audit_log set resource_label = 'x'",
      "delete from app_public.audit_log",
      "truncate app_public.audit_log",
      "insert into app_hidden.audit_leaves (tenant_id, seq, entry_id, leaf_hash, nodes) values (gen_random_uuid(), 1, 1, sha256('x'), '\\x')",
      "update app_hidden.audit_leaves set nodes = '\\x'",
      "delete from app_public.audit_checkpoints",
      "update app_private.audit_trees set size = 0",
      "update app_private.audit_seal_state set last_id = 0",
      "update app_private.audit_activity_hourly set entries = entries + 1",
      "update app_private.audit_activity_hours set entries = entries + 1",
      "delete from app_private.audit_activity_daily",
      "delete from app_private.audit_label_days",
      "update app_private.audit_label_state set last_id = 0",
      // (hiding a day's names from a one-character search)
      "update app_private.audit_label_chars set chars = 0",
      "alter table app_private.audit_label_days disable trigger _600_chars",
      // (hiding a month's names from a search for a word with an action)
      "update app_private.audit_label_trigram_months set actions = 0",
      // (changing a name's kept entries by action or actor, which counts add up: 000072)
      "update app_private.audit_label_days set action_entries = '{}', actor_entries = '{}'",
      // (hiding a surface's days from the surface filter: 000074)
      "delete from app_private.audit_surface_days",
      // (hiding a person's days from a search for a character with that person: 000079)
      "update app_private.audit_actor_chars set chars = 0",
      // (changing the entries a one-character word is counted from: 000081)
      "update app_private.audit_label_char_days set entries = array_fill(0::bigint, array[64])",
      // (changing the entries a one-character word with actions is counted from: 000090)
      "update app_private.audit_label_char_action_days set entries = array_fill(0::bigint, array[64])",
      // (changing the entries a one-character word with people is counted from: 000096)
      "update app_private.audit_actor_char_days set entries = array_fill(0::bigint, array[64])",
      // (changing the entries a two-character word with people is counted from: 000096)
      "update app_private.audit_actor_pair_days set entries = '{}'",
      // (changing the entries a two-character word is counted from: 000083)
      "update app_private.audit_label_pair_days set entries = '{}'",
      // (changing the entries a word without digits is counted from: 000105)
      "update app_private.audit_shape_days set entries = 0, action_entries = '{}', actor_entries = '{}'",
      "select setval('app_private.audit_entry_id_seq', 1)",
      // A verification that never ran ("Log intact") may not be recorded, nor a real one changed.
      `insert into app_private.chain_verifications (tenant_id, valid, entries, last_seq) values ('${demo}', true, 1, 1)`,
      "update app_private.chain_verifications set valid = true, first_invalid_seq = null, problem = null",
      "delete from app_private.chain_verifications",
      // Nor may it change what the SQL reporting interface shows a DBA (hide entries, fake a check).
      "create or replace view reporting.chain_status as select * from reporting.chain_status where false",
      "create or replace view reporting.audit_entries as select * from reporting.audit_entries where action <> 'incident.deleted'",
      "alter view reporting.audit_entries rename to audit_entries_old",
      "alter view reporting.chain_status owner to current_user",
      "drop view reporting.chain_verifications",
      "alter table app_public.audit_log disable row level security",
      "alter table app_public.audit_log owner to current_user",
      "create policy leak on app_public.audit_log for select using (true)",
      // (a GRANT by someone without the right only warns; the INSERT after it shows nothing was granted)
      `grant insert on app_public.audit_log to current_user;
       insert into app_public.audit_log (tenant_id, id, xid, occurred_at, actor_label, db_role, action, resource_type, surface)
         values ('${demo}', 999999998, pg_current_xact_id()::text::bigint, now(), 'x', 'x', 'incident.deleted', 'incident', 'web')`,
      "create trigger _050_forge before insert on app_public.audit_log for each row execute function app_private.tg__timestamps()",
    ]) {
      expect(await asOwner(sql), sql).toBe("42501");
    }
    expect(await entries()).toBe(before);
    // What it may do: verify a log and record what it found (the worker's daily and Verify now jobs).
    expect(await asOwner(`select app_private.record_chain_verification('${demo}')`)).toBe("ok");
    expect(await asOwner("select app_private.record_chain_verifications()")).toBe("ok");
  });

  it("may not add an entry that no captured change produced, even from a trigger of its own", async () => {
    const before = await entries();
    const state = await asOwner(`
      create table app_private.forge (x int);
      create function app_private.tg_forge() returns trigger language plpgsql as $$
      begin
        insert into app_public.audit_log (tenant_id, id, xid, occurred_at, actor_label, db_role, action, resource_type, surface)
        values ('${demo}', nextval('app_private.audit_entry_id_seq'), pg_current_xact_id()::text::bigint, now(), 'ceo@demo.test', 'x', 'incident.deleted', 'incident', 'web');
        return null;
      end $$;
      create trigger forge after insert on app_private.forge for each row execute function app_private.tg_forge();
      insert into app_private.forge values (1);`);
    expect(state).toBe("42501");
    expect(await entries()).toBe(before);
  });

  it("cannot make an entry name another user, even with a session of that user it wrote itself", async () => {
    const token = randomBytes(24).toString("base64url");
    await owner.query("begin");
    try {
      await owner.query(
        "insert into app_private.sessions (token_hash, user_id) select $1, id from app_public.users where email = 'owner@demo.test'",
        [createHash("sha256").update(token).digest()],
      );
      await owner.query(
        "select set_config('attest.session_token', $1, true), set_config('attest.tenant', 'demo', true)",
        [token],
      );
      await owner.query("insert into app_public.incidents (tenant_id, title) values ($1, 'In someone else''s name')", [
        demo,
      ]);
      const { rows } = await owner.query(
        "select actor_label, actor_user_id, db_role from app_public.audit_log where resource_label = 'In someone else''s name'",
      );
      expect(rows).toEqual([{ actor_label: "system", actor_user_id: null, db_role: t.db.roles.owner }]);
    } finally {
      await owner.query("rollback");
    }
  });

  it("installs the guard again, as every start does, while others read and write the log: it waits for none of them", async () => {
    // A writer and a sealer in the middle of their work hold the log's tables (a writer: ROW
    // EXCLUSIVE; the namer's and the sealer's kept counts too). Setup re-runs the guard at every
    // start, with nothing to change: it must not queue behind them (ALTER TABLE … OWNER takes an
    // ACCESS EXCLUSIVE lock even when the owner stays; two Attests starting together deadlocked).
    const holder = new pg.Client({ connectionString: t.superUrl });
    const installer = new pg.Client({ connectionString: t.superUrl });
    await holder.connect();
    await installer.connect();
    try {
      await holder.query("begin");
      const tables = path.filter((p) => p.kind === "log table" || p.kind === "audited table").map((p) => p.identity);
      expect(tables).toContain("app_public.audit_log");
      for (const table of tables) await holder.query(`lock table ${table} in row exclusive mode`);
      await installer.query("set lock_timeout = '3s'");
      await installer.query(guardSql);
      // and it still holds: the owner is refused a write to the log
      expect(await asOwner("delete from app_public.audit_log where false")).toBe("42501");
      await holder.query("rollback");
    } finally {
      await holder.end();
      await installer.end();
    }
  });

  it("the sealer role seals and signs, and can do nothing else", async () => {
    const sealer = new pg.Pool({ ...t.db.sealer, max: 1 });
    sealer.on("error", () => {}); // idle connections end when the test database is dropped
    try {
      await t.superuser.query("insert into app_public.incidents (tenant_id, title) values ($1, 'for the sealer')", [
        demo,
      ]);
      const key = await readActiveSigningKey(sealer);
      const round = await sealOnce(sealer, { key, originPrefix: TEST_ORIGIN });
      expect(round.sealed).toBeGreaterThan(0);
      for (const sql of [
        "select count(*) from app_public.audit_log",
        "select count(*) from app_hidden.audit_leaves",
        "insert into app_hidden.audit_leaves (tenant_id, seq, entry_id, leaf_hash, nodes) values (gen_random_uuid(), 1, 1, sha256('x'), '\\x')",
        "select count(*) from app_public.incidents",
        "select count(*) from app_private.sessions",
      ]) {
        expect(await sqlState(sealer.query(sql)), sql).toBe("42501");
      }
    } finally {
      await sealer.end();
    }
    await sealAll(t.pools.owner);
    const { rows } = await t.superuser.query("select valid from app_public.verify_audit_chain($1)", [demo]);
    expect(rows[0].valid).toBe(true);
  });
});
