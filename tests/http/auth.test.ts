/**
 * Sign-in over HTTP: sessions, sign-out, expiry, throttling, API tokens — and that no answer
 * tells whether an email has an account.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

describe.each(servers())("sign-in on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  const postLogin = (email: string, password: string, origin = web.url) =>
    fetch(`${web.url}/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: origin },
      body: new URLSearchParams({ email, password, next: "/t/demo/audit" }),
    });
  const me = async (cookie: string) =>
    await web.gql<{ currentUser: { email: string } | null }>("{ currentUser { email } }", { cookie });

  it("signs in with an HttpOnly, SameSite session cookie and follows a local next", async () => {
    const response = await postLogin("OWNER@demo.test ", "attest-demo");
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("/t/demo/audit");
    const cookie = response.headers.getSetCookie().find((c) => c.startsWith("attest_session="));
    expect(cookie).toMatch(/httponly/i);
    expect(cookie).toMatch(/samesite=lax/i);
    const session = cookie?.split(";")[0] ?? "";
    expect((await me(session)).data?.currentUser?.email).toBe("owner@demo.test");
  });

  it("never redirects off-site after sign-in", async () => {
    const response = await fetch(`${web.url}/login`, {
      method: "POST",
      redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: web.url },
      body: new URLSearchParams({ email: "admin@demo.test", password: "attest-demo", next: "//evil.example/x" }),
    });
    expect(response.headers.get("location")).toBe("/");
  });

  it("answers a wrong password and an unknown email the same way", async () => {
    const wrong = await postLogin("viewer@demo.test", "not-the-password");
    const unknown = await postLogin("nobody@demo.test", "not-the-password");
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    const [a, b] = [await wrong.text(), await unknown.text()];
    expect(a).toContain("Email or password is incorrect.");
    expect(b.replace("nobody@demo.test", "viewer@demo.test")).toBe(a);
    expect(wrong.headers.getSetCookie()).toEqual([]);
  });

  it("records a member's failed sign-ins once per burst, as system, when the burst ends (here: a sign-in)", async () => {
    const { tenants } = await ids(t);
    const last = async () =>
      (
        await t.superuser.query(
          "select action, actor_label, resource_label, surface, changes->'attempts' as attempts from app_public.audit_log where tenant_id = $1 order by id desc limit 2",
          [tenants.demo],
        )
      ).rows;
    const before = await last();
    await postLogin("member@demo.test", "guess-1");
    await postLogin("member@demo.test", "guess-2");
    expect(await last()).toEqual(before); // nothing per attempt
    await postLogin("member@demo.test", "attest-demo");
    expect(await last()).toEqual([
      {
        action: "session.signed_in",
        actor_label: "member@demo.test",
        resource_label: "member@demo.test",
        surface: "web",
        attempts: null,
      },
      {
        action: "session.sign_in_failed",
        actor_label: "system",
        resource_label: "member@demo.test",
        surface: "web",
        attempts: { new: 2 },
      },
    ]);
  });

  it("records sign-ins and sign-outs as the user", async () => {
    const { tenants } = await ids(t);
    const cookie = await web.signIn("admin@demo.test");
    await fetch(`${web.url}/logout`, {
      method: "POST",
      redirect: "manual",
      headers: { Cookie: cookie, Origin: web.url },
    });
    const { rows } = await t.superuser.query(
      "select action, actor_label from app_public.audit_log where tenant_id = $1 and resource_label = 'admin@demo.test' and action like 'session.%' order by id desc limit 2",
      [tenants.demo],
    );
    expect(rows).toEqual([
      { action: "session.signed_out", actor_label: "admin@demo.test" },
      { action: "session.signed_in", actor_label: "admin@demo.test" },
    ]);
  });

  it("slows down, then refuses, repeated failures — even with the right password", async () => {
    await t.superuser.query("delete from app_private.sign_in_failures");
    for (let i = 0; i < 10; i++) expect((await postLogin("viewer@demo.test", `guess-${i}`)).status).toBe(401);
    const refused = await postLogin("viewer@demo.test", "attest-demo");
    expect(refused.status).toBe(429);
    expect(refused.headers.get("retry-after")).toBe("900");
    expect(await refused.text()).toContain("Too many failed sign-ins");
  });

  it("refuses a cross-site sign-in form", async () => {
    const response = await postLogin("owner@demo.test", "attest-demo", "https://evil.example");
    expect(response.status).toBe(403);
  });

  it("signing out revokes the session on the server", async () => {
    const cookie = await web.signIn("owner@demo.test");
    expect((await me(cookie)).data?.currentUser?.email).toBe("owner@demo.test");
    const out = await fetch(`${web.url}/logout`, {
      method: "POST",
      redirect: "manual",
      headers: { Cookie: cookie, Origin: web.url },
    });
    expect(out.status).toBe(302);
    const after = await me(cookie);
    expect(after.status).toBe(401);
    expect(after.errors?.[0].extensions?.code).toBe("UNAUTHENTICATED");
  });

  it("an expired session is refused with a clear error", async () => {
    const cookie = await web.signIn("owner@demo.test");
    const token = decodeURIComponent(cookie.split("=")[1]);
    await t.superuser.query(
      "update app_private.sessions set expires_at = now() - interval '1 second' where token_hash = $1",
      [createHash("sha256").update(token).digest()],
    );
    const after = await me(cookie);
    expect(after.status).toBe(401);
    expect(after.errors?.[0].message).toMatch(/session has expired/);
  });

  it("API tokens: shown once, act as their creator in their tenant only, and stop working when revoked", async () => {
    const cookie = await web.signIn("admin@demo.test");
    const created = await web.gql<{
      createApiToken: { result: { rowId: string; token: string; tokenPrefix: string } };
    }>('mutation { createApiToken(input: { name: "CI" }) { result { rowId token tokenPrefix } } }', {
      cookie,
      tenant: "demo",
    });
    expect(created.errors).toBeUndefined();
    const { token, rowId, tokenPrefix } = created.data?.createApiToken.result ?? {
      token: "",
      rowId: "",
      tokenPrefix: "",
    };
    expect(token.startsWith(tokenPrefix)).toBe(true);
    // Stored hashed: the secret is nowhere in the database.
    const stored = await t.superuser.query(
      "select count(*)::int as n from app_private.api_token_secrets where token_hash = $1",
      [createHash("sha256").update(token).digest()],
    );
    expect(stored.rows[0].n).toBe(1);
    const dump = await t.superuser.query(
      "select row_to_json(t)::text as r from app_public.api_tokens t where t.id = $1",
      [rowId],
    );
    expect(dump.rows[0].r).not.toContain(token);
    // The token's tenant, whatever X-Tenant says (admin@demo.test is also a viewer in basic).
    const asToken = await web.gql<{ currentTenant: { slug: string }; currentUser: { email: string } }>(
      "{ currentTenant { slug } currentUser { email } }",
      { token, tenant: "basic" },
    );
    expect(asToken.data).toEqual({ currentTenant: { slug: "demo" }, currentUser: { email: "admin@demo.test" } });
    const revoke = await web.gql(
      "mutation($id: UUID!) { revokeApiToken(input: { id: $id }) { result { revokedAt } } }",
      {
        cookie,
        tenant: "demo",
        variables: { id: rowId },
      },
    );
    expect(revoke.errors).toBeUndefined();
    const after = await web.gql("{ currentUser { email } }", { token });
    expect(after.status).toBe(401);
    expect(after.errors?.[0]).toMatchObject({ extensions: { code: "UNAUTHENTICATED" } });
  });

  it("members and viewers cannot create API tokens", async () => {
    const cookie = await web.signIn("member@demo.test");
    const r = await web.gql('mutation { createApiToken(input: { name: "mine" }) { result { token } } }', { cookie });
    expect(r.errors?.[0]).toMatchObject({ extensions: { code: "FORBIDDEN" } });
    expect(r.errors?.[0].message).toMatch(/owner or admin/);
  });

  it("a user in several tenants must say which one", async () => {
    const cookie = await web.signIn("admin@demo.test");
    const r = await web.gql("{ currentUser { email } }", { cookie });
    expect(r.status).toBe(400);
    expect(r.errors?.[0].extensions?.code).toBe("TENANT_REQUIRED");
    const unknown = await web.gql("{ currentUser { email } }", { cookie, tenant: "no-such-tenant" });
    expect(unknown.errors?.[0].extensions?.code).toBe("UNKNOWN_TENANT");
  });

  it("cookie-authenticated GraphQL accepts only same-origin JSON", async () => {
    const cookie = await web.signIn("owner@demo.test");
    const crossSite = await web.gql("{ currentUser { email } }", { cookie, origin: "https://evil.example" });
    expect(crossSite.status).toBe(403);
    expect(crossSite.errors?.[0].extensions?.code).toBe("CSRF");
    const form = await fetch(`${web.url}/graphql`, {
      method: "POST",
      headers: { Cookie: cookie, Origin: web.url, "Content-Type": "application/x-www-form-urlencoded" },
      body: "query=%7BcurrentUser%7Bemail%7D%7D",
    });
    expect(form.status).toBe(415);
  });
  it("refuses an Authorization header that is not one bearer token, instead of answering as nobody", async () => {
    for (const authorization of [
      "Bearer attest_' or 1=1 --",
      "Bearer",
      "Basic YWRtaW46YWRtaW4=",
      "attest_abc",
      "Bearer a b",
    ]) {
      const response = await fetch(`${web.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization },
        body: JSON.stringify({ query: "{ auditLogs(first: 1) { nodes { seq } } }" }),
      });
      const body = (await response.json()) as { errors?: { message: string; extensions?: { code?: string } }[] };
      expect(response.status, authorization).toBe(401);
      expect(body.errors?.[0].extensions?.code, authorization).toBe("UNAUTHENTICATED");
      expect(body.errors?.[0].message).toContain("Bearer <API token>");
    }
  });
  it("answers each request as its own credentials say, whatever ran before on the same connection, and runs nothing for refused ones", async () => {
    const admin = await web.signIn("admin@demo.test");
    const created = await web.gql<{ createApiToken: { result: { token: string } } }>(
      'mutation { createApiToken(input: { name: "pipeline" }) { result { token } } }',
      { cookie: admin, tenant: "demo" },
    );
    const token = created.data?.createApiToken.result.token ?? "";
    expect(token).not.toBe("");
    const incidents = async () =>
      (await t.superuser.query("select count(*)::int as n from app_public.incidents")).rows[0].n as number;
    const before = await incidents();
    const list = "{ auditLogs(first: 3) { nodes { seq action } } currentTenant { slug } }";
    const create = 'mutation { createIncident(input: { incident: { title: "must not exist" } }) { incident { id } } }';
    // Requests one after another reuse the same pooled connection: good and refused ones, queries
    // and a mutation, in turns, twice over (the second time, the statements are prepared).
    for (let round = 0; round < 2; round++) {
      for (const [options, query, status, code] of [
        [{ token }, list, 200, null],
        [{ token: "attest_not-a-token" }, list, 401, "UNAUTHENTICATED"],
        [{ token }, list, 200, null],
        [{ token: "attest_not-a-token" }, create, 401, "UNAUTHENTICATED"],
        [{ cookie: admin, tenant: "nowhere" }, list, 404, "UNKNOWN_TENANT"],
        [{ cookie: admin }, create, 400, "TENANT_REQUIRED"],
        [{ cookie: admin, tenant: "basic" }, list, 200, null],
        [{ token }, list, 200, null],
      ] as const) {
        const r = await web.gql<{ auditLogs: { nodes: unknown[] } | null; currentTenant: { slug: string } | null }>(
          query,
          options,
        );
        expect(r.status, `${JSON.stringify(options)} ${query}`).toBe(status);
        if (code) {
          expect(r.errors).toHaveLength(1);
          expect(r.errors?.[0].extensions?.code).toBe(code);
        } else {
          expect(r.errors).toBeUndefined();
          const tenant = "tenant" in options ? options.tenant : "demo";
          expect(r.data?.currentTenant?.slug).toBe(tenant);
          // A viewer of basic does not read its audit log; the token's admin reads demo's.
          expect(r.data?.auditLogs?.nodes.length ?? 0).toBe(tenant === "demo" ? 3 : 0);
        }
      }
    }
    expect(await incidents()).toBe(before);
  });
});
