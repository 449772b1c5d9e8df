/**
 * An API token that passed the credential check is not checked again for a second in reads
 * (src/http/checked-tokens.ts). What it may read is still the database's decision on every
 * statement: a token revoked elsewhere sees nothing during that second and is refused (401) after
 * it; a token revoked through this server (GraphQL mutation, tokens page) is refused at once.
 * The clock (Date.now) is held still where the second must not run out on a slow machine.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { CHECKED_TOKEN_MS, checkedTokens } from "../../src/http/checked-tokens.ts";
import { csrfToken } from "../../src/http/csrf.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const READ = "{ currentTenant { slug } auditLogs(first: 5) { nodes { rowId } } }";

interface Read {
  currentTenant: { slug: string } | null;
  auditLogs: { nodes: Array<{ rowId: string }> } | null;
}

describe("checkedTokens", () => {
  it("keeps a check for CHECKED_TOKEN_MS, per token and tenant, and not one begun before a write", () => {
    const begun = checkedTokens.begin();
    checkedTokens.remember("attest_a", "demo", begun);
    expect(checkedTokens.recently("attest_a", "demo", begun.at + CHECKED_TOKEN_MS - 1)).toBe(true);
    expect(checkedTokens.recently("attest_a", "demo", begun.at + CHECKED_TOKEN_MS)).toBe(false);
    expect(checkedTokens.recently("attest_a", undefined, begun.at)).toBe(false);
    expect(checkedTokens.recently("attest_b", "demo", begun.at)).toBe(false);
    // A write began (or ended) while the check ran: what it passed may have changed.
    const before = checkedTokens.begin();
    checkedTokens.forget();
    expect(checkedTokens.recently("attest_a", "demo", begun.at)).toBe(false);
    checkedTokens.remember("attest_b", "demo", before);
    expect(checkedTokens.recently("attest_b", "demo", before.at)).toBe(false);
  });
});

describe.each(servers())("checked API tokens on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let cookie: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
    cookie = await web.signIn("admin@demo.test");
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });
  afterEach(() => {
    vi.restoreAllMocks();
  });

  async function newToken(name: string): Promise<{ token: string; rowId: string }> {
    const created = await web.gql<{ createApiToken: { result: { rowId: string; token: string } } }>(
      "mutation($name: String!) { createApiToken(input: { name: $name }) { result { rowId token } } }",
      { cookie, tenant: "demo", variables: { name } },
    );
    expect(created.errors).toBeUndefined();
    return created.data?.createApiToken.result ?? { token: "", rowId: "" };
  }

  /** Holds Date.now at its current value; returns a function that moves it on by `ms`. */
  function holdClock(): (ms: number) => void {
    const start = Date.now();
    const now = vi.spyOn(Date, "now").mockReturnValue(start);
    return (ms) => now.mockReturnValue(start + ms);
  }

  it("a token revoked in SQL reads nothing while its check is kept, and is refused once the second is over", async () => {
    const { token, rowId } = await newToken("revoked in SQL");
    const advance = holdClock();
    const first = await web.gql<Read>(READ, { token });
    expect(first.status).toBe(200);
    expect(first.data?.currentTenant).toEqual({ slug: "demo" });
    expect(first.data?.auditLogs?.nodes.length).toBeGreaterThan(0);

    await t.superuser.query("update app_public.api_tokens set revoked_at = now() where id = $1", [rowId]);
    // Not checked again (the same second): answered 200, but the database shows it nothing.
    const kept = await web.gql<Read>(READ, { token });
    expect(kept.status).toBe(200);
    expect(kept.errors).toBeUndefined();
    expect(kept.data).toEqual({ currentTenant: null, auditLogs: { nodes: [] } });

    advance(CHECKED_TOKEN_MS - 1);
    expect((await web.gql<Read>(READ, { token })).data?.currentTenant).toBeNull();
    advance(CHECKED_TOKEN_MS);
    const after = await web.gql<Read>(READ, { token });
    expect(after.status).toBe(401);
    expect(after.errors?.[0]).toMatchObject({ extensions: { code: "UNAUTHENTICATED" } });
  });

  it("a token revoked through the tokens page is refused at once", async () => {
    const { token, rowId } = await newToken("revoked on the page");
    holdClock();
    expect((await web.gql<Read>(READ, { token })).data?.currentTenant).toEqual({ slug: "demo" });
    const revoked = await fetch(`${web.url}/t/demo/tokens/${rowId}/revoke`, {
      method: "POST",
      redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: web.url, Cookie: cookie },
      body: new URLSearchParams({ _csrf: csrfToken(cookie.slice("attest_session=".length)) }),
    });
    expect(revoked.status).toBe(302);
    const state = await t.superuser.query("select revoked_at from app_public.api_tokens where id = $1", [rowId]);
    expect(state.rows[0].revoked_at).not.toBeNull();
    const after = await web.gql<Read>(READ, { token });
    expect(after.status).toBe(401);
  });

  it("a token revoked by a GraphQL mutation is refused at once, and a mutation is always checked", async () => {
    const { token, rowId } = await newToken("revoked by mutation");
    holdClock();
    expect((await web.gql<Read>(READ, { token })).data?.currentTenant).toEqual({ slug: "demo" });
    // Revoked in SQL: a read within the second is not checked, but a mutation is (401, nothing written).
    await t.superuser.query("update app_public.api_tokens set revoked_at = now() where id = $1", [rowId]);
    const write = await web.gql(
      'mutation { createIncident(input: { incident: { title: "by a revoked token" } }) { incident { rowId } } }',
      { token },
    );
    expect(write.status).toBe(401);
    const written = await t.superuser.query("select count(*)::int as n from app_public.incidents where title = $1", [
      "by a revoked token",
    ]);
    expect(written.rows[0].n).toBe(0);
    // That mutation (refused) made the server forget every checked token: the read is checked again.
    expect((await web.gql<Read>(READ, { token })).status).toBe(401);

    const other = await newToken("revoked by mutation 2");
    expect((await web.gql<Read>(READ, { token: other.token })).status).toBe(200);
    const revoke = await web.gql(
      "mutation($id: UUID!) { revokeApiToken(input: { id: $id }) { result { revokedAt } } }",
      {
        cookie,
        tenant: "demo",
        variables: { id: other.rowId },
      },
    );
    expect(revoke.errors).toBeUndefined();
    expect((await web.gql<Read>(READ, { token: other.token })).status).toBe(401);
  });

  it("an unknown token is refused every time, and a token is kept with the tenant it named", async () => {
    holdClock();
    for (let i = 0; i < 3; i++) expect((await web.gql<Read>(READ, { token: "attest_unknown" })).status).toBe(401);
    const { token, rowId } = await newToken("tenant named");
    expect((await web.gql<Read>(READ, { token, tenant: "demo" })).status).toBe(200);
    await t.superuser.query("update app_public.api_tokens set revoked_at = now() where id = $1", [rowId]);
    // Checked with X-Tenant: demo; asked without it (or with another tenant), it is checked again.
    expect((await web.gql<Read>(READ, { token })).status).toBe(401);
    expect((await web.gql<Read>(READ, { token, tenant: "basic" })).status).toBe(401);
    expect((await web.gql<Read>(READ, { token, tenant: "demo" })).data?.currentTenant).toBeNull();
  });
});
