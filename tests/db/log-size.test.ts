/**
 * app_hidden.audit_entry_count() (GraphQL's totalCount without a condition): the tree's size plus
 * the entries not sealed yet, for the tenant's owners and admins only. Since 000082 up to 10,000
 * pending entries (of all tenants) are read in seal order by a plan kept for the session; more are
 * counted as before. The answer is the same either way. Since 000084 the same holds for the kept
 * activity the Audit Log page adds up (audit_activity_total, audit_activity_days).
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

  it("adds up the kept activity (total and days) as the log counts it, with few and with 10,000 or more pending", async () => {
    const hour = 3_600_000;
    const now = Math.floor(Date.now() / hour) * hour;
    const at = (hours: number) => new Date(now + hours * hour).toISOString();
    // Whole-hour windows (the page asks for no other), with and without actions, in four zones.
    const views: Array<[string | null, string | null, string[] | null, string]> = [
      [null, null, null, "UTC"],
      [at(-72), at(1), null, "Asia/Tokyo"],
      [null, null, ["incident.updated"], "UTC"],
      [at(-48), null, ["incident.updated", "incident.created", "no.such"], "America/New_York"],
      [null, at(-100), ["incident.updated"], "Asia/Kolkata"],
    ];
    const truth = async ([from, to, actions, zone]: (typeof views)[number]) => {
      const where = `tenant_id = $1 and ($2::timestamptz is null or occurred_at >= $2)
        and ($3::timestamptz is null or occurred_at < $3) and ($4::text[] is null or action = any ($4))`;
      const params = [demo, from, to, actions];
      const total = Number(
        (await t.superuser.query(`select count(*) as n from app_public.audit_log where ${where}`, params)).rows[0].n,
      );
      const days = (
        await t.superuser.query(
          `select to_char((date_trunc('hour', occurred_at, 'UTC') at time zone $5)::date, 'YYYY-MM-DD') as day, count(*)::int as n
           from app_public.audit_log where ${where} group by 1 order by 1`,
          [...params, zone],
        )
      ).rows;
      return { total, days };
    };
    const kept = (email: string, [from, to, actions, zone]: (typeof views)[number]) =>
      asUser(t, email, "demo", async (c) => ({
        total: Number(
          (await c.query("select app_hidden.audit_activity_total($1, $2, $3) as n", [from, to, actions])).rows[0].n,
        ),
        days: (
          await c.query(
            "select to_char(day, 'YYYY-MM-DD') as day, entries::int as n from app_hidden.audit_activity_days($1, $2, $3, $4) order by day",
            [from, to, actions, zone],
          )
        ).rows,
      }));
    const check = async () => {
      for (const view of views) {
        const expected = await truth(view);
        expect(await kept("admin@demo.test", view), JSON.stringify(view)).toEqual(expected);
        expect(await kept("owner@demo.test", view), JSON.stringify(view)).toEqual(expected);
        expect(await kept("member@demo.test", view), JSON.stringify(view)).toEqual({ total: 0, days: [] });
      }
    };
    await sealAll(t.pools.owner);
    await check();
    expect((await truth(views[2])).total).toBeGreaterThan(0);
    // Few pending (some of another tenant's), then 10,000 or more in all: read as before 000084.
    await load(demo, 30);
    await load(basic, 20);
    await check();
    await load(demo, 10_000);
    await check();
    await sealAll(t.pools.owner);
    await check();
  });
});
