/**
 * app_hidden.audit_entry_count() (GraphQL's totalCount without a condition): the tree's size plus
 * the entries not sealed yet, for the tenant's owners and admins only. Since 000082 up to 10,000
 * pending entries (of all tenants) are read in seal order by a plan kept for the session; more are
 * counted as before. The answer is the same either way.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asUser, createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { sealAll } from "../helpers/seal.ts";

describe.each(servers())("the log's size on $name", (server) => {
  let t: TestDatabase;
  let demo: string;
  let basic: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    ({ demo, basic } = (await ids(t)).tenants);
  });
  afterAll(async () => {
    await t?.drop();
  });

  const counted = (email: string) =>
    asUser(t, email, "demo", async (c) =>
      Number((await c.query("select app_hidden.audit_entry_count() as n")).rows[0].n),
    );
  const inLog = async () =>
    Number(
      (await t.superuser.query("select count(*) as n from app_public.audit_log where tenant_id = $1", [demo])).rows[0]
        .n,
    );
  /** `n` entries written straight into the log (the bulk path), not sealed. */
  async function load(tenant: string, n: number) {
    const writer = await t.superuser.connect();
    try {
      await writer.query("begin");
      await writer.query("set local session_replication_role = replica");
      await writer.query(
        `insert into app_public.audit_log (tenant_id, id, xid, occurred_at, actor_label, db_role, action, resource_type, surface)
         select $1, nextval('app_private.audit_entry_id_seq'), pg_current_xact_id()::text::bigint,
                now() - make_interval(mins => g), 'bulk@demo.test', 'visitor', 'incident.updated', 'incident', 'web'
         from generate_series(1, $2::int) g`,
        [tenant, n],
      );
      await writer.query("commit");
    } finally {
      writer.release();
    }
  }

  it("counts the sealed and the pending entries, with few and with 10,000 or more pending, for readers only", async () => {
    const sealed = await inLog();
    expect(sealed).toBeGreaterThan(0);
    expect(await counted("admin@demo.test")).toBe(sealed);
    // Few pending, some of another tenant's (not counted).
    await load(demo, 25);
    await load(basic, 40);
    expect(await counted("admin@demo.test")).toBe(sealed + 25);
    expect(await counted("owner@demo.test")).toBe(sealed + 25);
    // Exactly 10,000 pending in all, then more: counted the way they were before 000082.
    await load(demo, 10_000 - 65);
    expect(await counted("admin@demo.test")).toBe(sealed + 10_000 - 40);
    await load(basic, 100);
    await load(demo, 7);
    expect(await counted("admin@demo.test")).toBe(sealed + 10_000 - 33);
    expect(await counted("admin@demo.test")).toBe(await inLog());
    await sealAll(t.pools.owner);
    expect(await counted("admin@demo.test")).toBe(await inLog());
    // A member who is not an owner or admin reads no log: 0.
    expect(await counted("member@demo.test")).toBe(0);
  });
});
