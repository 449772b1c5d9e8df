/**
 * Invitations, enforced by the database and tried as the real roles: only owners and admins of a
 * tenant invite (only owners invite owners), the answer never says whether the address has an
 * account, the inviting tenant sees only its own invitations and the invitee only theirs, nobody
 * becomes a member without accepting (users cannot write memberships or invitations themselves),
 * a link token works once and only for the invitee, and invitations expire. Every step is audited.
 */
import { createHash } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withContext } from "../../src/db/context.ts";
import { createTestDatabase, ids, servers, sessionFor, sqlState, type TestDatabase } from "../helpers/db.ts";

interface Created {
  id: string;
  email: string;
  role: string;
  expires_at: Date;
  token: string;
}

describe.each(servers())("invitations on $name", (server) => {
  let t: TestDatabase;
  let demo: string;
  let basic: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    ({ demo, basic } = (await ids(t)).tenants);
    // Two people with accounts and no tenant yet.
    await t.superuser.query(
      "insert into app_public.users (email, name) values ('pat@people.test', 'Pat'), ('quinn@people.test', 'Quinn')",
    );
  });
  afterAll(async () => {
    await t?.drop();
  });

  /** Runs `fn` as `email` signed in with a session (in `tenant`, if given), as the server does. */
  async function as<T>(email: string, tenant: string | undefined, fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const sessionToken = await sessionFor(t, email);
    return withContext(t.pools.auth, { role: t.db.roles.visitor, sessionToken, tenant, surface: "sql" }, fn);
  }
  const invite = (by: string, tenant: string, email: string, role = "member") =>
    as(by, tenant, async (c) => {
      const { rows } = await c.query<Created>("select * from app_public.invite_member($1, $2)", [email, role]);
      return rows[0];
    });
  const entries = async (tenant: string, label: string) =>
    (
      await t.superuser.query<{ action: string; actor_label: string }>(
        "select action, actor_label from app_public.audit_log where tenant_id = $1 and resource_label = $2 order by id",
        [tenant, label],
      )
    ).rows;
  const membership = async (tenant: string, email: string) =>
    (
      await t.superuser.query<{ role: string }>(
        "select m.role from app_public.memberships m join app_public.users u on u.id = m.user_id where m.tenant_id = $1 and u.email = $2",
        [tenant, email],
      )
    ).rows[0]?.role;

  it("answers the same whether or not the address has an account, and stores only the token's hash", async () => {
    const known = await invite("owner@demo.test", demo, " Pat@People.test ");
    const unknown = await invite("owner@demo.test", demo, "ghost@people.test");
    expect(Object.keys(known)).toEqual(Object.keys(unknown));
    expect({ ...known, id: "", token: "", expires_at: 0 }).toEqual({
      ...unknown,
      id: "",
      token: "",
      expires_at: 0,
      email: "pat@people.test",
    });
    for (const created of [known, unknown]) {
      expect(created.token).toMatch(/^inv_[0-9a-f]{48}$/);
      const days = (created.expires_at.getTime() - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(6.99);
      expect(days).toBeLessThanOrEqual(7);
    }
    const stored = await t.superuser.query(
      "select count(*)::int as n from app_private.invitation_secrets where token_hash = $1",
      [createHash("sha256").update(known.token).digest()],
    );
    expect(stored.rows[0].n).toBe(1);
    const dump = await t.superuser.query(
      `select (select json_agg(i)::text from app_public.invitations i) || (select json_agg(e)::text from app_public.audit_log e) as all`,
    );
    expect(dump.rows[0].all).not.toContain(known.token);
    expect(dump.rows[0].all).not.toContain(known.token.slice(4));
    // Recorded in the inviting tenant, by the inviter, the same way for both addresses.
    expect(await entries(demo, "pat@people.test")).toEqual([
      { action: "invitation.created", actor_label: "owner@demo.test" },
    ]);
    expect(await entries(demo, "ghost@people.test")).toEqual([
      { action: "invitation.created", actor_label: "owner@demo.test" },
    ]);
  });

  it("shows a tenant's invitations to its owners and admins only, and each invitee only their own", async () => {
    const seen = (email: string, tenant?: string) =>
      as(email, tenant, async (c) =>
        (
          await c.query(
            "select case when tenant_id = $1 then 'demo' else 'basic' end as tenant, email from app_public.invitations order by 1, 2",
            [demo],
          )
        ).rows.map((r) => `${r.tenant}: ${r.email}`),
      );
    const demos = ["demo: ghost@people.test", "demo: pat@people.test"];
    expect(await seen("owner@demo.test", demo)).toEqual(demos);
    // admin@demo.test also sees the invitation to basic it accepted (the seed's): its own.
    expect(await seen("admin@demo.test", demo)).toEqual(["basic: admin@demo.test", ...demos]);
    expect(await seen("admin@demo.test", basic)).toEqual(["basic: admin@demo.test"]); // a viewer there
    expect(await seen("member@demo.test", demo)).toEqual([]);
    expect(await seen("viewer@demo.test", demo)).toEqual([]);
    expect(await seen("owner@basic.test", basic)).toEqual(["basic: admin@demo.test"]);
    expect(await seen("owner@demo.test", basic)).toEqual([]); // not a member of basic: no tenant at all
    expect(await seen("pat@people.test")).toEqual(["demo: pat@people.test"]);
    expect(await seen("quinn@people.test")).toEqual([]);
    const mine = await as(
      "pat@people.test",
      undefined,
      async (c) =>
        (
          await c.query(
            "select email, role, app_public.invitations_tenant_name(i) as tenant, app_public.invitations_invited_by_email(i) as by from app_public.my_invitations() i",
          )
        ).rows,
    );
    expect(mine).toEqual([
      { email: "pat@people.test", role: "member", tenant: "Demo Energy GmbH", by: "owner@demo.test" },
    ]);
    // The computed fields tell nothing about an invitation the caller cannot see, even when the
    // row is made up with a real invitation's tenant and id.
    const [real] = (
      await t.superuser.query("select tenant_id, id from app_public.invitations where tenant_id = $1 limit 1", [demo])
    ).rows;
    const forged = await as(
      "quinn@people.test",
      undefined,
      async (c) =>
        (
          await c.query(
            `select app_public.invitations_tenant_name(i) as tenant, app_public.invitations_invited_by_email(i) as by
           from json_populate_record(null::app_public.invitations, $1) i`,
            [JSON.stringify({ ...real, email: "quinn@people.test", role: "member", state: "pending" })],
          )
        ).rows[0],
    );
    expect(forged).toEqual({ tenant: null, by: null });
  });

  it("lets owners invite any role, admins no owners, members and viewers nobody; refuses bad input", async () => {
    const state = (by: string, email: string, role: string, tenant = demo) => sqlState(invite(by, tenant, email, role));
    expect(await state("member@demo.test", "x1@people.test", "viewer")).toBe("42501");
    expect(await state("viewer@demo.test", "x1@people.test", "viewer")).toBe("42501");
    expect(await state("admin@demo.test", "x1@people.test", "owner")).toBe("42501");
    expect(await state("admin@demo.test", "x1@people.test", "admin")).toBe("ok");
    expect(await state("owner@demo.test", "x2@people.test", "owner")).toBe("ok");
    expect(await state("owner@demo.test", "x3@people.test", "boss")).toBe("23514");
    expect(await state("owner@demo.test", "not an email", "member")).toBe("23514");
    expect(await state("owner@demo.test", "member@demo.test", "member")).toBe("23505"); // already a member
    expect(await state("owner@demo.test", "x1@people.test", "member")).toBe("23505"); // already invited
    // admin@demo.test is a viewer in basic: no inviting there.
    expect(await state("admin@demo.test", "x4@people.test", "member", basic)).toBe("42501");
  });

  it("lets no user write memberships or invitations directly: add_member is gone", async () => {
    const [pat] = (await t.superuser.query("select id from app_public.users where email = 'pat@people.test'")).rows;
    await as("owner@demo.test", demo, async (c) => {
      for (const sql of [
        `insert into app_public.memberships (user_id, role) values ('${pat.id}', 'member')`,
        "insert into app_public.invitations (tenant_id, email, role) values (app_public.current_tenant_id(), 'y@people.test', 'member')",
        "update app_public.invitations set state = 'accepted'",
        "delete from app_public.invitations",
      ]) {
        await c.query("savepoint s");
        expect(await sqlState(c.query(sql)), sql).toBe("42501");
        await c.query("rollback to savepoint s");
      }
      expect(await sqlState(c.query("select app_public.add_member('pat@people.test', 'member')"))).toBe("42883");
    });
    expect(await membership(demo, "pat@people.test")).toBeUndefined();
  });

  it("accepts only for the invitee signed in with a session, once, by link token or id", async () => {
    const created = await invite("owner@basic.test", basic, "pat@people.test", "viewer");
    const accept = (email: string, args: { token?: string; id?: string }, tenant?: string) =>
      as(
        email,
        tenant,
        async (c) =>
          (
            await c.query("select state, role from app_public.accept_invitation(token => $1, id => $2)", [
              args.token ?? null,
              args.id ?? null,
            ])
          ).rows[0],
      );
    // Someone else holding the link, or naming its id: nothing.
    expect(await sqlState(accept("quinn@people.test", { token: created.token }))).toBe("P0002");
    expect(await sqlState(accept("owner@basic.test", { id: created.id }, basic))).toBe("P0002");
    expect(await sqlState(accept("pat@people.test", {}))).toBe("22000");
    // An API token acts for a tenant, not for a person: it cannot answer.
    const apiToken = await as(
      "owner@basic.test",
      basic,
      async (c) => (await c.query("select token from app_public.create_api_token('people')")).rows[0].token as string,
    );
    const viaToken = withContext(t.pools.auth, { role: t.db.roles.visitor, apiToken, surface: "sql" }, (c) =>
      c.query("select * from app_public.accept_invitation(token => $1)", [created.token]),
    );
    expect(await sqlState(viaToken)).toBe("42501");
    expect(await membership(basic, "pat@people.test")).toBeUndefined();

    expect(await accept("pat@people.test", { token: created.token })).toEqual({ state: "accepted", role: "viewer" });
    expect(await membership(basic, "pat@people.test")).toBe("viewer");
    // Single use: the token is gone, and the invitation cannot be answered again.
    const left = await t.superuser.query(
      "select count(*)::int as n from app_private.invitation_secrets where tenant_id = $1 and invitation_id = $2",
      [basic, created.id],
    );
    expect(left.rows[0].n).toBe(0);
    expect(await sqlState(accept("pat@people.test", { token: created.token }))).toBe("P0002");
    expect(await sqlState(accept("pat@people.test", { id: created.id }))).toBe("P0002");
    expect(
      await sqlState(
        as("pat@people.test", undefined, (c) =>
          c.query("select app_public.decline_invitation(id => $1)", [created.id]),
        ),
      ),
    ).toBe("P0002");
    expect(await entries(basic, "pat@people.test")).toEqual([
      { action: "invitation.created", actor_label: "owner@basic.test" },
      { action: "invitation.accepted", actor_label: "pat@people.test" },
      { action: "membership.created", actor_label: "pat@people.test" },
    ]);
  });

  it("declines and revokes: no membership, and each is recorded", async () => {
    const [open] = (
      await t.superuser.query<{ id: string }>(
        "select id from app_public.invitations where tenant_id = $1 and email = 'pat@people.test' and state = 'pending'",
        [demo],
      )
    ).rows;
    const declined = await as(
      "pat@people.test",
      basic,
      async (c) => (await c.query("select state from app_public.decline_invitation(id => $1)", [open.id])).rows[0],
    );
    expect(declined).toEqual({ state: "declined" });
    expect(await membership(demo, "pat@people.test")).toBeUndefined();

    const again = await invite("admin@demo.test", demo, "pat@people.test", "member");
    // Neither the invitee nor another tenant's owner can revoke it.
    expect(
      await sqlState(
        as("pat@people.test", basic, (c) => c.query("select app_public.revoke_invitation($1)", [again.id])),
      ),
    ).toBe("42501");
    expect(
      await sqlState(
        as("owner@basic.test", basic, (c) => c.query("select app_public.revoke_invitation($1)", [again.id])),
      ),
    ).toBe("P0002");
    const revoked = await as(
      "admin@demo.test",
      demo,
      async (c) => (await c.query("select state from app_public.revoke_invitation($1)", [again.id])).rows[0],
    );
    expect(revoked).toEqual({ state: "revoked" });
    expect(
      await sqlState(
        as("pat@people.test", undefined, (c) => c.query("select app_public.accept_invitation($1)", [again.token])),
      ),
    ).toBe("P0002");
    expect(await membership(demo, "pat@people.test")).toBeUndefined();
    expect((await entries(demo, "pat@people.test")).map((e) => `${e.action} by ${e.actor_label}`)).toEqual([
      "invitation.created by owner@demo.test",
      "invitation.declined by pat@people.test",
      "invitation.created by admin@demo.test",
      "invitation.revoked by admin@demo.test",
    ]);
  });

  it("expires after 7 days: it can no longer be answered, and a new invitation replaces it", async () => {
    const old = await invite("owner@demo.test", demo, "quinn@people.test", "viewer");
    await t.superuser.query(
      "update app_public.invitations set expires_at = now() - interval '1 second' where id = $1",
      [old.id],
    );
    const attempt = as("quinn@people.test", undefined, (c) =>
      c.query("select app_public.accept_invitation(token => $1)", [old.token]),
    );
    await expect(attempt).rejects.toThrow(/expired/);
    expect(
      await as(
        "quinn@people.test",
        undefined,
        async (c) => (await c.query("select * from app_public.my_invitations()")).rows,
      ),
    ).toEqual([]);
    const fresh = await invite("owner@demo.test", demo, "quinn@people.test", "member");
    const states = await t.superuser.query(
      "select id, state from app_public.invitations where tenant_id = $1 and email = 'quinn@people.test'",
      [demo],
    );
    expect(Object.fromEntries(states.rows.map((r) => [r.id, r.state]))).toEqual({
      [old.id]: "expired",
      [fresh.id]: "pending",
    });
    expect((await entries(demo, "quinn@people.test")).map((e) => `${e.action} by ${e.actor_label}`)).toEqual([
      "invitation.created by owner@demo.test",
      "invitation.updated by system", // this test moving expires_at as a superuser
      "invitation.expired by owner@demo.test",
      "invitation.created by owner@demo.test",
    ]);
  });
});
