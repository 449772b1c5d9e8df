/**
 * app_hidden.page_shell (migration 000025): the frame of a workspace page in one call. It must
 * answer exactly what the row-level policies let the caller see: the same answer as asking
 * current_user(), current_tenant() and the visible tenants through the policies, for every user,
 * every tenant asked for (by slug, as the pages do), a user of several tenants, an API token,
 * and no credentials at all.
 */
import { createHash, randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ActingContext, withContext } from "../../src/db/context.ts";
import { createTestDatabase, ids, servers, sessionFor, type TestDatabase } from "../helpers/db.ts";

/** The frame as the pages asked for it before page_shell, through the policies. */
const THROUGH_POLICIES = `
  select u.id as user_id, u.email, u.name as user_name,
         t.id as tenant_id, t.slug, t.name as tenant_name, p.name as plan_name,
         coalesce(app_public.tenants_features(t), '{}') as features, app_public.current_tenant_role() as role,
         coalesce((select json_agg(json_build_object('slug', o.slug, 'name', o.name, 'role', app_public.tenants_my_role(o)) order by o.name)
                   from app_public.tenants o), '[]') as tenants
  from app_public.current_user() u
  left join app_public.current_tenant() t on t.slug = $1
  left join app_public.plans p on p.id = t.plan_id`;

describe.each(servers())("page_shell on $name", (server) => {
  let t: TestDatabase;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    // A user of two tenants (owner in demo, viewer in basic).
    const known = await ids(t);
    await t.superuser.query("insert into app_public.memberships (tenant_id, user_id, role) values ($1, $2, 'viewer')", [
      known.tenants.basic,
      known.users["owner@demo.test"],
    ]);
  });
  afterAll(async () => {
    await t?.drop();
  });

  const both = (context: ActingContext, slug: string) =>
    withContext(t.pools.auth, { role: t.db.roles.visitor, ...context }, async (c) => ({
      shell: (await c.query("select * from app_hidden.page_shell($1)", [slug])).rows[0],
      policies: (await c.query(THROUGH_POLICIES, [slug])).rows[0],
    }));

  it("answers what the policies show, for every user and every tenant asked for", async () => {
    const users = ["owner@demo.test", "admin@demo.test", "member@demo.test", "viewer@demo.test", "owner@basic.test"];
    let members = 0;
    for (const email of users) {
      const sessionToken = await sessionFor(t, email);
      for (const slug of ["demo", "basic", "nowhere"]) {
        const { shell, policies } = await both({ sessionToken, tenant: slug, surface: "web" }, slug);
        expect(shell).toEqual(policies);
        expect(shell.email).toBe(email);
        if (shell.tenant_id) members++;
        else expect(shell.slug).toBeNull();
      }
    }
    // Each user in each tenant they belong to (demo and basic being the ones asked for).
    const { rows } = await t.superuser.query(
      `select count(*)::int as n from app_public.memberships m join app_public.users u on u.id = m.user_id
       join app_public.tenants x on x.id = m.tenant_id where u.email = any ($1) and x.slug in ('demo', 'basic')`,
      [users],
    );
    expect(members).toBe(rows[0].n);
    expect(members).toBeGreaterThanOrEqual(6);
  });

  it("lists every tenant of a user of several, with their role in each", async () => {
    const sessionToken = await sessionFor(t, "owner@demo.test");
    const { shell } = await both({ sessionToken, tenant: "basic", surface: "web" }, "basic");
    expect(shell.role).toBe("viewer");
    expect(shell.tenants.map((x: { slug: string; role: string }) => [x.slug, x.role])).toEqual([
      ["basic", "viewer"],
      ["demo", "owner"],
    ]);
  });

  it("shows an API token its own tenant only, as the policies do", async () => {
    const known = await ids(t);
    const secret = `att_${randomBytes(16).toString("hex")}`;
    await t.superuser.query(
      `with k as (insert into app_public.api_tokens (tenant_id, user_id, name, token_prefix)
                  values ($1, $2, 'shell token', 'att_') returning tenant_id, id)
       insert into app_private.api_token_secrets (tenant_id, token_id, token_hash) select tenant_id, id, $3 from k`,
      [known.tenants.demo, known.users["owner@demo.test"], createHash("sha256").update(secret).digest()],
    );
    for (const slug of ["demo", "basic"]) {
      const { shell, policies } = await both({ apiToken: secret, tenant: slug, surface: "graphql" }, slug);
      expect(shell).toEqual(policies);
      expect(shell.tenants.map((x: { slug: string }) => x.slug)).toEqual(["demo"]);
    }
  });

  it("answers nothing without valid credentials", async () => {
    for (const context of [
      { surface: "web" as const, tenant: "demo" },
      { surface: "web" as const, tenant: "demo", sessionToken: "not-a-session" },
    ]) {
      const { shell, policies } = await both(context, "demo");
      expect(shell).toBeUndefined();
      expect(policies.user_id).toBeNull();
    }
  });
});
