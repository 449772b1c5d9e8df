/**
 * app_hidden.audit_log_facts (migration 000026): the Audit Log page's size, latest capture
 * number, actions and latest verification in one call. It answers what the log's policy lets
 * the caller see — the same as asking through the policy — and nothing to anyone else.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asUser, createTestDatabase, servers, sqlState, type TestDatabase } from "../helpers/db.ts";

const FACTS = "select entries::int, latest_id::text, actions, chain from app_hidden.audit_log_facts()";
/** The same facts asked through the log's row-level policy. */
const THROUGH_POLICY = `
  select (select count(*)::int from app_public.audit_log) as entries,
         (select max(id)::text from app_public.audit_log) as latest_id,
         coalesce((select array_agg(distinct action) from app_public.audit_log), '{}') as actions`;

describe.each(servers())("audit_log_facts on $name", (server) => {
  let t: TestDatabase;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
  });
  afterAll(async () => {
    await t?.drop();
  });

  it("gives owners and admins the facts of their tenant's log, as the policy shows it", async () => {
    await t.superuser.query(
      `insert into app_private.chain_verifications (tenant_id, valid, entries, last_seq)
       select id, true, 10, 10 from app_public.tenants where slug = 'demo'`,
    );
    for (const email of ["owner@demo.test", "admin@demo.test"]) {
      const { facts, policy } = await asUser(t, email, "demo", async (c) => ({
        facts: (await c.query(FACTS)).rows[0],
        policy: (await c.query(THROUGH_POLICY)).rows[0],
      }));
      expect(facts.entries).toBe(policy.entries);
      expect(facts.entries).toBeGreaterThan(100);
      expect(facts.latest_id).toBe(policy.latest_id);
      expect([...facts.actions].sort()).toEqual([...policy.actions].sort());
      expect(facts.chain).toMatchObject({ valid: true, entries: "10", last_seq: "10" });
    }
  });

  it("gives members and viewers nothing, and refuses a plan without the audit log", async () => {
    for (const email of ["member@demo.test", "viewer@demo.test"]) {
      const facts = await asUser(t, email, "demo", async (c) => (await c.query(FACTS)).rows[0]);
      expect(facts).toEqual({ entries: 0, latest_id: null, actions: [], chain: null });
    }
    expect(await sqlState(asUser(t, "owner@basic.test", "basic", (c) => c.query(FACTS)))).toBe("ATPLN");
  });

  it("tells nothing of another tenant's log", async () => {
    const facts = await asUser(t, "owner@demo.test", "basic", async (c) => (await c.query(FACTS)).rows[0]);
    expect(facts).toEqual({ entries: 0, latest_id: null, actions: [], chain: null });
  });
});
