/**
 * Immutability: no role but a superuser can change or remove audit entries, and no client role
 * can insert one directly. Each statement is tried over a real connection as each role.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asUser, createLogin, createTestDatabase, ids, servers, sqlState, type TestDatabase } from "../helpers/db.ts";

const statements = (tenantId: string) => ({
  UPDATE: `update app_public.audit_log set resource_label = 'forged' where tenant_id = '${tenantId}'`,
  DELETE: `delete from app_public.audit_log where tenant_id = '${tenantId}'`,
  TRUNCATE: "truncate app_public.audit_log",
  INSERT: `insert into app_public.audit_log (tenant_id, occurred_at, actor_label, db_role, action, resource_type, surface)
           values ('${tenantId}', now(), 'forger', 'x', 'incident.created', 'incident', 'sql')`,
});

describe.each(servers())("immutability on $name", (server) => {
  let t: TestDatabase;
  let demo: string;
  let reportingUrl: string;
  let fingerprint: string;

  const snapshot = async () =>
    (
      await t.superuser.query(
        `select count(*) || ':' || md5(string_agg(app_private.audit_entry_body(e), ',' order by tenant_id, id)) as f
         from app_public.audit_log e`,
      )
    ).rows[0].f as string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    demo = (await ids(t)).tenants.demo;
    reportingUrl = await createLogin(t, "dba", t.db.roles.reporting);
    fingerprint = await snapshot();
  });
  afterAll(async () => {
    await t?.drop();
  });

  /** Runs one statement as `who` in its own transaction; returns the SQLSTATE. */
  async function attempt(who: string, sql: string): Promise<string> {
    if (who === "visitor (tenant owner)") {
      return sqlState(asUser(t, "owner@demo.test", "demo", (c) => c.query(sql)));
    }
    const config: pg.ClientConfig =
      who === "owner"
        ? t.db.owner
        : who === "authenticator"
          ? { connectionString: t.db.authUrl }
          : { connectionString: reportingUrl };
    const client = new pg.Client(config);
    await client.connect();
    try {
      return await sqlState(client.query(sql));
    } finally {
      await client.end();
    }
  }

  for (const who of ["visitor (tenant owner)", "authenticator", "owner", "reporting"]) {
    for (const op of ["UPDATE", "DELETE", "TRUNCATE", "INSERT"] as const) {
      it(`refuses ${op} as ${who}`, async () => {
        expect(await attempt(who, statements(demo)[op])).toBe("42501");
      });
    }
  }

  it("left every audit entry as it was", async () => {
    expect(await snapshot()).toBe(fingerprint);
  });

  it("the owner cannot write an entry even through a function of its own", async () => {
    const client = new pg.Client(t.db.owner);
    await client.connect();
    try {
      await client.query("begin");
      await client.query(
        `create function pg_temp.forge() returns void language sql as $$ ${statements(demo).INSERT} $$`,
      );
      expect(await sqlState(client.query("select pg_temp.forge()"))).toBe("42501");
    } finally {
      await client.query("rollback").catch(() => {});
      await client.end();
    }
  });

  it("even a superuser is stopped by the triggers unless it disables them", async () => {
    expect(await sqlState(t.superuser.query(statements(demo).UPDATE))).toBe("42501");
    expect(await sqlState(t.superuser.query(statements(demo).DELETE))).toBe("42501");
    expect(await sqlState(t.superuser.query(statements(demo).TRUNCATE))).toBe("42501");
    expect(await snapshot()).toBe(fingerprint);
  });
});

describe.each(servers())("DDL guard on $name", (server) => {
  let t: TestDatabase;
  let owner: pg.Client;
  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    // The owner logging in directly (not through a superuser session), as a DBA-managed install would.
    await t.superuser.query(`alter role "${t.db.roles.owner}" login password 'owner-pw'`);
    const url = new URL(t.superUrl);
    url.username = t.db.roles.owner;
    url.password = "owner-pw";
    owner = new pg.Client({ connectionString: url.toString() });
    await owner.connect();
  });
  afterAll(async () => {
    await owner?.end();
    await t?.drop();
  });

  it.each([
    "drop table app_public.audit_log cascade",
    "drop schema app_public cascade",
    "alter table app_public.audit_log disable trigger all",
    "alter table app_public.audit_log disable trigger _000_immutable",
    "drop trigger _000_immutable on app_public.audit_log",
    "alter table app_public.audit_log rename to audit_log_old",
    "create policy leak on app_public.audit_log for select using (true)",
    "create rule skip_delete as on delete to app_public.audit_log do instead nothing",
    "create or replace function app_private.tg_audit_log__immutable() returns trigger language plpgsql as $$ begin return old; end $$",
    "drop function app_private.audit_entry_body(app_public.audit_log) cascade",
    "alter table app_public.audit_log no force row level security",
    "create or replace function app_public.current_user_id() returns uuid language sql stable as $$ select null::uuid $$",
    "alter function app_public.current_tenant_id() rename to old_current_tenant_id",
  ])("the owner is refused: %s", async (sql) => {
    const state = await sqlState(owner.query(sql));
    expect(state).toBe("42501");
    const { rows } = await t.superuser.query(
      "select count(*)::int as n, (select count(*)::int from pg_trigger where tgrelid = 'app_public.audit_log'::regclass and not tgisinternal) as triggers from app_public.audit_log",
    );
    expect(rows[0].n).toBeGreaterThan(200);
    expect(rows[0].triggers).toBe(3);
  });

  it("the capture trigger refuses to run on a table it was not written for", async () => {
    const state = await sqlState(
      owner.query(`
        create table app_private.fake (tenant_id uuid, id uuid, title text);
        create trigger _500_audit after insert on app_private.fake for each row execute function app_private.tg__audit('incident');
        insert into app_private.fake select id, gen_random_uuid(), 'Forged incident' from app_public.tenants limit 1;`),
    );
    expect(state).toBe("42501");
    const { rows } = await t.superuser.query(
      "select count(*)::int as n from app_public.audit_log where resource_label = 'Forged incident'",
    );
    expect(rows[0].n).toBe(0);
  });

  it("other DDL by the owner still works", async () => {
    expect(
      await sqlState(owner.query("create table app_private.scratch (x int); drop table app_private.scratch")),
    ).toBe("ok");
  });
});
