/**
 * Who a request is (migration 000035): app_private.current_membership, app_hidden.check_request and
 * the audit log's policies answer exactly as the definitions they replaced (kept below as `ref.*`,
 * word for word as 000023 and 000018 left them), for every combination of credentials a request
 * can carry: a session (live, revoked, expired, unknown, of a user with one tenant, several or none),
 * an API token (live, revoked, expired, unknown, of either tenant) and a tenant named by slug or
 * id (or an unknown one, or none). The policies are checked as the visitor role reads the log, its
 * leaves and its checkpoints.
 */
import { createHash, randomBytes } from "node:crypto";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, servers, sqlState, type TestDatabase } from "../helpers/db.ts";

/** The definitions before 000035, in a schema of the test's own. */
const REFERENCE = `
create schema ref;
create function ref.current_membership(out tenant_id uuid, out role text, out features text[])
 language plpgsql stable security definer set search_path to 'pg_catalog', 'public' as $$
declare
  v_user uuid := app_public.current_user_id();
  v_tenant text := nullif(current_setting('attest.tenant', true), '');
  v_token_tenant uuid;
  v_tenant_uuid uuid := case when v_tenant ~ '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                             then v_tenant::uuid end;
begin
  if v_user is null then
    return;
  end if;
  if nullif(current_setting('attest.api_token', true), '') is not null then
    v_token_tenant := (app_hidden.current_api_token()).tenant_id;
  end if;
  if v_token_tenant is not null then
    select m.tenant_id, m.role, p.features into tenant_id, role, features
    from app_public.memberships m
    join app_public.tenants t on t.id = m.tenant_id
    left join app_public.plans p on p.id = t.plan_id
    where m.user_id = v_user and m.tenant_id = v_token_tenant;
  elsif v_tenant is not null then
    select m.tenant_id, m.role, p.features into tenant_id, role, features
    from app_public.memberships m
    join app_public.tenants t on t.id = m.tenant_id
    left join app_public.plans p on p.id = t.plan_id
    where m.user_id = v_user
      and m.tenant_id in ((select x.id from app_public.tenants x where x.slug = v_tenant), v_tenant_uuid);
  else
    select m.tenant_id, m.role, p.features into tenant_id, role, features
    from app_public.memberships m
    join app_public.tenants t on t.id = m.tenant_id
    left join app_public.plans p on p.id = t.plan_id
    where m.user_id = v_user
      and (select count(*) from app_public.memberships o where o.user_id = v_user) = 1;
  end if;
end $$;
create function ref.audit_log_readable() returns boolean
 language plpgsql stable security definer set search_path to 'pg_catalog', 'public' as $$
declare
  v_role text;
  v_features text[];
begin
  select m.role, m.features into v_role, v_features from ref.current_membership() m;
  if v_role is null or v_role not in ('owner', 'admin') then
    return false;
  end if;
  if not coalesce('auditLog' = any (v_features), false) then
    raise exception 'The audit log is not in your plan.' using errcode = 'ATPLN';
  end if;
  return true;
end $$;
create function ref.check_request(p_token_given boolean, p_tenant_given boolean) returns void
 language plpgsql stable set search_path to 'pg_catalog', 'public' as $$
begin
  if app_public.current_user_id() is null then
    raise exception 'not valid' using errcode = 'AT401';
  end if;
  if p_token_given or (ref.current_membership()).tenant_id is not null then
    return;
  end if;
  if p_tenant_given then
    raise exception 'not a member' using errcode = 'AT404';
  end if;
  if (select count(*) from app_public.tenants) > 1 then
    raise exception 'several' using errcode = 'AT400';
  end if;
end $$;
`;

const hash = (token: string) => createHash("sha256").update(token).digest();

describe.each(servers())("credentials on $name", (server) => {
  let t: TestDatabase;
  let su: pg.PoolClient;
  const sessions: Record<string, string> = { none: "" };
  const tokens: Record<string, string> = { none: "" };
  const tenantNames: Record<string, string> = { none: "" };

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    su = await t.superuser.connect();
    await su.query(REFERENCE);
    const tenant = async (slug: string) =>
      (await su.query("select id from app_public.tenants where slug = $1", [slug])).rows[0].id as string;
    const demo = await tenant("demo");
    const basic = await tenant("basic");
    // A user in both tenants (admin of demo, owner of basic) and one in none.
    const user = async (email: string) =>
      (await su.query("insert into app_public.users (email, name) values ($1, $1) returning id", [email])).rows[0]
        .id as string;
    const multi = await user("multi@both.test");
    await user("lonely@none.test");
    await su.query(
      "insert into app_public.memberships (tenant_id, user_id, role) values ($1, $3, 'admin'), ($2, $3, 'owner')",
      [demo, basic, multi],
    );
    const session = async (name: string, email: string, state: "live" | "revoked" | "expired") => {
      const token = randomBytes(18).toString("base64url");
      await su.query(
        `insert into app_private.sessions (token_hash, user_id, revoked_at, expires_at)
         select $1, id, case when $3 = 'revoked' then now() end,
                case when $3 = 'expired' then now() - interval '1 minute' else now() + interval '1 day' end
         from app_public.users where email = $2`,
        [hash(token), email, state],
      );
      sessions[name] = token;
    };
    for (const email of [
      "owner@demo.test",
      "admin@demo.test",
      "member@demo.test",
      "owner@basic.test",
      "multi@both.test",
      "lonely@none.test",
    ]) {
      await session(email, email, "live");
    }
    await session("revoked", "admin@demo.test", "revoked");
    await session("expired", "admin@demo.test", "expired");
    sessions.unknown = "not-a-session";
    const token = async (name: string, email: string, tenantId: string, state: "live" | "revoked" | "expired") => {
      const secret = `attest_${randomBytes(18).toString("base64url")}`;
      await su.query(
        `with u as (select id from app_public.users where email = $2),
              t as (insert into app_public.api_tokens (tenant_id, user_id, name, token_prefix, revoked_at, expires_at)
                    select $3, u.id, $4, left($1, 12), case when $5 = 'revoked' then now() end,
                           case when $5 = 'expired' then now() - interval '1 minute' end
                    from u returning tenant_id, id)
         insert into app_private.api_token_secrets (tenant_id, token_id, token_hash) select t.tenant_id, t.id, $6 from t`,
        [secret, email, tenantId, name, state, hash(secret)],
      );
      tokens[name] = secret;
    };
    await token("demo admin", "admin@demo.test", demo, "live");
    await token("demo member", "member@demo.test", demo, "live");
    await token("basic owner", "owner@basic.test", basic, "live");
    await token("multi in basic", "multi@both.test", basic, "live");
    await token("revoked", "admin@demo.test", demo, "revoked");
    await token("expired", "admin@demo.test", demo, "expired");
    tokens.unknown = "attest_unknown";
    Object.assign(tenantNames, { demo: "demo", basic: "basic", "demo id": demo, "basic id": basic, unknown: "nope" });
    tenantNames["id upper case"] = demo.toUpperCase();
  });
  afterAll(async () => {
    su?.release();
    await t?.drop();
  });

  /** Runs `fn` in a transaction with the credentials set, as `role` (or the superuser), and rolls back. */
  async function withCredentials<T>(
    c: { session: string; token: string; tenant: string },
    role: string | null,
    fn: () => Promise<T>,
  ): Promise<T> {
    await su.query("begin");
    try {
      await su.query(
        "select set_config('attest.session_token', $1, true), set_config('attest.api_token', $2, true), set_config('attest.tenant', $3, true)",
        [sessions[c.session], tokens[c.token], tenantNames[c.tenant]],
      );
      if (role) await su.query(`set local role "${role}"`);
      return await fn();
    } finally {
      await su.query("rollback");
    }
  }

  /** Each statement in its own savepoint, so that an error (its SQLSTATE is the answer) does not end the transaction. */
  async function answer(text: string): Promise<unknown> {
    await su.query("savepoint a");
    try {
      const { rows } = await su.query(text);
      await su.query("release savepoint a");
      return rows;
    } catch (error) {
      await su.query("rollback to savepoint a");
      return sqlState(Promise.reject(error));
    }
  }

  const combinations = () =>
    Object.keys(sessions).flatMap((session) =>
      Object.keys(tokens).flatMap((token) => Object.keys(tenantNames).map((tenant) => ({ session, token, tenant }))),
    );

  it("finds the same membership and passes or refuses the same requests as before, for every combination", async () => {
    const all = combinations();
    expect(all.length).toBeGreaterThan(300);
    let members = 0;
    let readers = 0;
    for (const c of all) {
      await withCredentials(c, null, async () => {
        const now = await answer("select * from app_private.current_membership()");
        const before = await answer("select * from ref.current_membership()");
        expect({ c, now }).toEqual({ c, now: before });
        if ((now as { tenant_id: string | null }[])[0].tenant_id) members++;
        const tenant = await answer("select app_hidden.audit_log_tenant() as t");
        const expected = await answer(
          "select case when ref.audit_log_readable() then (ref.current_membership()).tenant_id end as t",
        );
        expect({ c, tenant }).toEqual({ c, tenant: expected });
        if (Array.isArray(tenant) && tenant[0].t) readers++;
        expect({ c, readable: await answer("select app_hidden.audit_log_readable() as r") }).toEqual({
          c,
          readable: await answer("select ref.audit_log_readable() as r"),
        });
        for (const [token, named] of [
          [false, false],
          [false, true],
          [true, false],
          [true, true],
        ]) {
          const check = await answer(`select app_hidden.check_request(${token}, ${named})`);
          const was = await answer(`select ref.check_request(${token}, ${named})`);
          expect({ c, token, named, check: typeof check === "string" ? check : "ok" }).toEqual({
            c,
            token,
            named,
            check: typeof was === "string" ? was : "ok",
          });
        }
      });
    }
    // The combinations reach members and readers (not only refusals).
    expect(members).toBeGreaterThan(50);
    expect(readers).toBeGreaterThan(20);
  });

  it("shows the visitor the log, its leaves and its checkpoints of the tenant it may read, and nothing else", async () => {
    const counts = async (where: string) =>
      (
        await su.query(
          `select (select count(*) from app_public.audit_log where ${where})::int as log,
                  (select count(*) from app_hidden.audit_leaves where ${where})::int as leaves,
                  (select count(*) from app_public.audit_checkpoints where ${where})::int as checkpoints`,
        )
      ).rows[0];
    let seen = 0;
    for (const c of combinations()) {
      const expected = await withCredentials(c, null, async () => {
        const readable = await answer("select ref.audit_log_readable() as r");
        if (typeof readable === "string") return readable;
        if (!(readable as { r: boolean }[])[0].r) return { log: 0, leaves: 0, checkpoints: 0 };
        return counts("tenant_id = (select (ref.current_membership()).tenant_id)");
      });
      const visible = await withCredentials(c, t.db.roles.visitor, async () => {
        const rows = await answer(
          `select (select count(*) from app_public.audit_log)::int as log,
                  (select count(*) from app_hidden.audit_leaves)::int as leaves,
                  (select count(*) from app_public.audit_checkpoints)::int as checkpoints`,
        );
        return typeof rows === "string" ? rows : (rows as unknown[])[0];
      });
      expect({ c, visible }).toEqual({ c, visible: expected });
      if (typeof visible !== "string" && visible && (visible as { log: number }).log > 0) seen++;
    }
    expect(seen).toBeGreaterThan(20);
  });
});
