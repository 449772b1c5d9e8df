/**
 * Immutability: no role but a superuser can change or remove audit entries, and no client role
 * can insert one directly. Each statement is tried over a real connection as each role.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asUser, createLogin, createTestDatabase, ids, servers, sqlState, type TestDatabase } from "../helpers/db.ts";

const statements = (tenantId: string) => ({
  UPDATE: "update app_public.audit_log set resource_label = 'forged' where seq = 1",
  DELETE: "delete from app_public.audit_log where seq = 1",
  TRUNCATE: "truncate app_public.audit_log",
  INSERT: `insert into app_public.audit_log (tenant_id, seq, occurred_at, actor_label, db_role, action, resource_type, surface, hash)
           values ('${tenantId}', 100000, now(), 'forger', 'x', 'incident.created', 'incident', 'sql', sha256('x'))`,
});

describe.each(servers())("immutability on $name", (server) => {
  let t: TestDatabase;
  let demo: string;
  let reportingUrl: string;
  let fingerprint: string;

  const snapshot = async () =>
    (
      await t.superuser.query(
        "select count(*) || ':' || md5(string_agg(encode(hash, 'hex'), ',' order by tenant_id, seq)) as f from app_public.audit_log",
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
