/**
 * Bad input gets a 4xx with a sentence a person understands — never a 500, a stack trace or
 * PostgreSQL's own text — on the pages, the evidence API and GraphQL; a database outage is a 503.
 * Also: files are served so a browser cannot run them, webhooks to private addresses are refused
 * by the database on every surface, and the CSRF check decides on the credential first.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createGraphQL } from "../../src/graphql/index.ts";
import { csrfToken } from "../../src/http/csrf.ts";
import { createApp, startServer } from "../../src/web/server.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";
import { LEAKS } from "../helpers/leaks.ts";
import { sealAll } from "../helpers/seal.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { runJobsOnce } from "../helpers/worker.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

describe.each(servers())("clear errors on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let owner: string;
  let viewer: string;
  let incidentId: string;
  let exportId: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
    owner = await web.signIn("owner@demo.test");
    viewer = await web.signIn("viewer@demo.test");
    incidentId = (
      await t.superuser.query(
        "select i.id from app_public.incidents i join app_public.tenants t on t.id = i.tenant_id where t.slug = 'demo' and i.deleted_at is null order by i.created_at limit 1",
      )
    ).rows[0].id;
    exportId = (
      await web.gql<{ createExport: { export: { rowId: string } } }>(
        "mutation($id: UUID!) { createExport(input: { export: { incidentId: $id } }) { export { rowId } } }",
        { cookie: owner, tenant: "demo", variables: { id: incidentId } },
      )
    ).data?.createExport.export.rowId as string;
    // Build it (the worker's task, once, after the sealer's round) so that it can be downloaded.
    await sealAll(t.pools.owner);
    await runJobsOnce(t.pools.owner);
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  const csrfOf = (cookie: string) => csrfToken(decodeURIComponent(cookie.split("=")[1]));
  const get = (path: string, cookie = owner, headers: Record<string, string> = {}) =>
    fetch(`${web.url}${path}`, { headers: { Cookie: cookie, ...headers }, redirect: "manual" });
  const postForm = (path: string, fields: Record<string, string>, cookie = owner) =>
    fetch(`${web.url}${path}`, {
      method: "POST",
      redirect: "manual",
      headers: { Cookie: cookie, Origin: web.url, "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ _csrf: csrfOf(cookie), ...fields }),
    });

  async function expectClear(response: Response, status: number | RegExp) {
    const body = await response.text();
    if (typeof status === "number") expect(response.status, body.slice(0, 300)).toBe(status);
    else expect(String(response.status), body.slice(0, 300)).toMatch(status);
    expect(body).not.toMatch(LEAKS);
    return body;
  }

  it("answers NUL bytes anywhere in an address with 400 and a sentence", async () => {
    for (const path of [
      "/t/demo/audit?q=%00",
      "/t/demo/audit?action=a%00b",
      "/t/%00/incidents",
      "/t/demo/incidents?q=%00",
      `/api/evidence/${incidentId}/download?tenant=%00`,
      `/api/exports/${exportId}/pack.zip?tenant=%00`,
    ]) {
      const body = await expectClear(await get(path), 400);
      expect(body, path).toContain("NUL");
    }
  });

  it("answers NUL bytes in form fields and GraphQL values with 400 / BAD_USER_INPUT", async () => {
    const page = await postForm("/t/demo/incidents", { title: "bad\u0000title", severity: "low" });
    await expectClear(page, /^(400|303)$/);
    for (const [query, variables] of [
      ["query($q: String) { auditLogs(condition: { action: $q }) { nodes { seq } } }", { q: "a\u0000b" }],
      ["query($q: String) { auditLogs(condition: { actorContains: $q }) { nodes { seq } } }", { q: "\u0000" }],
      [
        "mutation($t: String!) { createIncident(input: { incident: { title: $t } }) { incident { rowId } } }",
        { t: "x\u0000" },
      ],
    ] as const) {
      const result = await web.gql(query, { cookie: owner, tenant: "demo", variables });
      expect(
        result.errors?.map((e) => e.extensions?.code),
        query,
      ).toEqual(["BAD_USER_INPUT"]);
      expect(JSON.stringify(result.errors)).not.toMatch(LEAKS);
    }
  });

  it("ignores impossible dates on the Audit Log page and refuses them over GraphQL", async () => {
    for (const query of ["from=2024-02-31", "to=2023-02-29", "from=0000-01-01&to=0000-12-31", "from=2024-13-01"]) {
      await expectClear(await get(`/t/demo/audit?${query}`), 200);
    }
    for (const value of ["2024-02-31T00:00:00Z", "0000-01-01T00:00:00Z", "2023-02-29", "not a date"]) {
      const result = await web.gql(
        "query($d: Datetime) { auditLogs(condition: { occurredAfter: $d }) { nodes { seq } } }",
        { cookie: owner, tenant: "demo", variables: { d: value } },
      );
      expect(
        result.errors?.map((e) => e.extensions?.code),
        value,
      ).toEqual(["BAD_USER_INPUT"]);
    }
  });

  it("draws the Audit Log chart for the widest date range quickly", async () => {
    for (const query of ["from=0001-01-01&to=9999-12-31", "to=9999-12-31", "from=0001-01-01"]) {
      const started = performance.now();
      await expectClear(await get(`/t/demo/audit?${query}`), 200);
      expect(performance.now() - started, query).toBeLessThan(3000);
    }
  });

  it("answers GraphQL limits and bad arguments with 4xx codes, never INTERNAL", async () => {
    const o = { cookie: owner, tenant: "demo" };
    const deep = await web.gql(
      "{ incidents { nodes { tenant { incidents { nodes { tenant { incidents { nodes { tenant { incidents { nodes { tenant { rowId } } } } } } } } } } } } }",
      o,
    );
    expect([deep.status, deep.errors?.[0].extensions?.code]).toEqual([400, "DEPTH_LIMIT"]);
    const aliases = await web.gql(
      `{ ${Array.from({ length: 20 }, (_, i) => `a${i}: currentUser { rowId }`).join(" ")} }`,
      o,
    );
    expect([aliases.status, aliases.errors?.[0].extensions?.code]).toEqual([400, "ALIAS_LIMIT"]);
    const cases: Array<[string, string]> = [
      ['{ auditLogs(after: "bogus") { nodes { seq } } }', "BAD_USER_INPUT"],
      ['{ incidents(after: "WyJuYXR1cmFsIiwxXQ==") { nodes { rowId } } }', "BAD_USER_INPUT"],
      ["{ auditLogs(offset: -1) { nodes { seq } } }", "BAD_USER_INPUT"],
      ['{ auditLogs(condition: { rowId: "99999999999999999999999" }) { nodes { seq } } }', "BAD_USER_INPUT"],
      ['{ auditLogEntry(seq: "99999999999999999999999") { seq } }', "BAD_USER_INPUT"],
      ["{ auditLogs(first: 101) { nodes { seq } } }", "PAGE_SIZE"],
      ["{ auditLogs(first: 5, offset: 1001) { nodes { seq } } }", "OFFSET_LIMIT"],
      ["{ incidents(offset: 100000) { nodes { rowId } } }", "OFFSET_LIMIT"],
      ["subscription { currentUser { rowId } }", "BAD_USER_INPUT"],
    ];
    for (const [query, code] of cases) {
      const result = await web.gql(query, o);
      expect(result.status, query).toBeLessThan(500);
      expect(
        result.errors?.map((e) => e.extensions?.code),
        query,
      ).toEqual([code]);
      expect(JSON.stringify(result.errors)).not.toMatch(LEAKS);
    }
  });

  it("answers an update of a row the caller may not change with NOT_FOUND, as the README says", async () => {
    const mutation = `mutation($id: UUID!) { updateIncidentByRowId(input: { rowId: $id, patch: { title: "Changed" } }) { incident { rowId } } }`;
    for (const [cookie, id] of [
      [viewer, incidentId],
      [owner, "00000000-0000-4000-8000-000000000000"],
    ]) {
      const result = await web.gql(mutation, { cookie, tenant: "demo", variables: { id } });
      expect(result.errors?.map((e) => e.extensions?.code)).toEqual(["NOT_FOUND"]);
    }
    const { rows } = await t.superuser.query("select title from app_public.incidents where id = $1", [incidentId]);
    expect(rows[0].title).not.toBe("Changed");
  });

  it("answers a pack download in a tenant the user is not in with 404, not 500", async () => {
    const admin = await web.signIn("admin@demo.test"); // admin of demo, viewer of basic
    const token = (
      await web.gql<{ createApiToken: { result: { token: string } } }>(
        'mutation { createApiToken(input: { name: "packs" }) { result { token } } }',
        { cookie: owner, tenant: "demo" },
      )
    ).data?.createApiToken.result.token;
    for (const file of ["pack.zip", "report.pdf"]) {
      for (const tenant of ["basic", "no-such-tenant", "demo"]) {
        for (const headers of [{ Cookie: owner }, { Cookie: admin }, { Authorization: `Bearer ${token}` }]) {
          const response = await fetch(`${web.url}/api/exports/${exportId}/${file}?tenant=${tenant}`, { headers });
          // In its own tenant (and with a token, which is bound to it) the owner gets the file.
          if (tenant === "demo" || headers.Authorization) {
            expect([response.status, headers.Cookie === admin || response.status === 200]).toEqual([200, true]);
            await response.body?.cancel();
            continue;
          }
          await expectClear(response, /^40[34]$/);
        }
      }
    }
  });

  it("re-enables an automatically disabled webhook from the Webhooks page", async () => {
    const { rows } = await t.superuser.query(
      "update app_public.webhooks set active = false, disabled_reason = '10 failed deliveries in a row', consecutive_failures = 10 where id = (select w.id from app_public.webhooks w join app_public.tenants t on t.id = w.tenant_id where t.slug = 'demo' limit 1) returning id",
    );
    const id = rows[0].id;
    const response = await postForm(`/t/demo/webhooks/${id}/active`, { active: "true" });
    const body = await expectClear(response, /^30[23]$/);
    expect(body).not.toContain("permission denied");
    const after = await t.superuser.query(
      "select active, disabled_reason, consecutive_failures from app_public.webhooks where id = $1",
      [id],
    );
    expect(after.rows[0]).toEqual({ active: true, disabled_reason: null, consecutive_failures: 0 });
  });

  it("refuses webhooks to private addresses on every surface (GraphQL create and update too)", async () => {
    const o = { cookie: owner, tenant: "demo" };
    const refused = [
      "http://127.0.0.1/hook",
      "http://10.1.2.3/hook",
      "http://[::1]/hook",
      "http://localhost./hook",
      "http://api.localhost/hook",
      "http://[64:ff9b::a00:1]/hook",
      "http://[2002:a00:1::1]/hook",
      "http://[::10.0.0.1]/hook",
      "http://[::ffff:169.254.169.254]/hook",
      "http://0x7f000001/hook",
      "http://127.1/hook",
    ];
    const created = await web.gql<{ createWebhook: { result: { rowId: string } } }>(
      'mutation { createWebhook(input: { url: "https://hooks.example.com/attest" }) { result { rowId } } }',
      o,
    );
    expect(created.errors).toBeUndefined();
    const id = created.data?.createWebhook.result.rowId;
    for (const url of refused) {
      const create = await web.gql("mutation($u: String!) { createWebhook(input: { url: $u }) { result { rowId } } }", {
        ...o,
        variables: { u: url },
      });
      expect(
        create.errors?.map((e) => e.extensions?.code),
        url,
      ).toEqual(["BAD_USER_INPUT"]);
      expect(create.errors?.[0].message, url).toMatch(/private|IPv4|IPv6|host/);
      const update = await web.gql(
        "mutation($id: UUID!, $u: String!) { updateWebhookByRowId(input: { rowId: $id, patch: { url: $u } }) { webhook { url } } }",
        { ...o, variables: { id, u: url } },
      );
      expect(
        update.errors?.map((e) => e.extensions?.code),
        url,
      ).toEqual(["BAD_USER_INPUT"]);
      const page = await postForm("/t/demo/webhooks", { url, description: "", actions: "" });
      expect(page.status, url).toBe(400);
    }
    const { rows } = await t.superuser.query("select url from app_public.webhooks where url = any($1)", [refused]);
    expect(rows).toEqual([]);
  });

  it("serves evidence so that a browser cannot run it, and strips bidi controls from filenames", async () => {
    const form = new FormData();
    form.append("file", new Blob(["alert(document.cookie)"], { type: "text/javascript" }), "x.js");
    form.append("file", new Blob(["%PDF"], { type: "application/pdf" }), "invoice\u202Efdp.exe");
    const upload = await fetch(`${web.url}/api/incidents/${incidentId}/evidence`, {
      method: "POST",
      headers: { Cookie: owner, Origin: web.url, "X-Tenant": "demo" },
      body: form,
    });
    expect(upload.status).toBe(201);
    const [js, pdf] = ((await upload.json()) as { evidence: Array<{ id: string; filename: string }> }).evidence;
    expect(pdf.filename).toBe("invoicefdp.exe");
    const response = await get(`/api/evidence/${js.id}/download?tenant=demo`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/octet-stream");
    expect(response.headers.get("content-disposition")).toMatch(/^attachment; /);
    expect(response.headers.get("content-security-policy")).toMatch(/^sandbox/);
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    // A rename over GraphQL cannot bring the control back either.
    const rename = await web.gql(
      "mutation($id: UUID!, $f: String!) { updateEvidenceByRowId(input: { rowId: $id, patch: { filename: $f } }) { evidence { filename } } }",
      { cookie: owner, tenant: "demo", variables: { id: pdf.id, f: "invoice\u202Efdp.exe" } },
    );
    expect(rename.errors?.map((e) => e.extensions?.code)).toEqual(["BAD_USER_INPUT"]);
  });

  it("applies CSRF to a cookie-authenticated request whatever its Authorization header says", async () => {
    const before = (await t.superuser.query("select count(*)::int as n from app_public.evidence")).rows[0].n;
    for (const authorization of ["Bearer two words", "Bearer", "Basic abc", "Bearer\u0009"]) {
      const form = new FormData();
      form.append("file", new Blob(["forged"]), "forged.txt");
      const response = await fetch(`${web.url}/api/incidents/${incidentId}/evidence?tenant=demo`, {
        method: "POST",
        headers: { Cookie: owner, Origin: "https://evil.example", Authorization: authorization },
        body: form,
      });
      const body = await expectClear(response, 403);
      expect(body, authorization).toContain("CSRF");
    }
    const after = (await t.superuser.query("select count(*)::int as n from app_public.evidence")).rows[0].n;
    expect(after).toBe(before);
  });

  it("logs no stack trace for complete or aborted downloads", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      for (let i = 0; i < 5; i++) {
        // Complete downloads (the response finishes before the stream's last step), then aborted ones.
        for (const file of ["report.pdf", "pack.zip"]) {
          const response = await get(`/t/demo/exports/${exportId}/${file}`);
          expect(response.status).toBe(200);
          await response.arrayBuffer();
        }
        const controller = new AbortController();
        const response = await fetch(`${web.url}/t/demo/exports/${exportId}/report.pdf`, {
          headers: { Cookie: owner },
          signal: controller.signal,
        }).catch(() => undefined);
        controller.abort();
        await response?.body?.cancel().catch(() => {});
      }
      await new Promise((r) => setTimeout(r, 300));
      expect(errors.mock.calls.map((c) => String(c[0])).join("\n")).not.toMatch(/ERR_STREAM_PREMATURE_CLOSE|\n\s+at /);
    } finally {
      errors.mockRestore();
    }
  });

  it("answers 503 with a clear message when the database cannot be reached", async () => {
    const dead = new pg.Pool({ connectionString: "postgres://nobody@127.0.0.1:1/none", connectionTimeoutMillis: 500 });
    dead.on("error", () => {});
    const app = createApp({ authPool: dead, visitorRole: t.db.roles.visitor, log: quiet, maxUploadBytes: 1024 });
    const graphql = createGraphQL({ authPool: dead, visitorRole: t.db.roles.visitor, log: quiet });
    const running = await startServer(app, "127.0.0.1", 0, (s) => graphql.addTo(app, s));
    try {
      for (const path of ["/t/demo/incidents", "/t/demo/audit", `/api/evidence/${incidentId}/download`]) {
        const response = await fetch(`${running.url}${path}`, { headers: { Cookie: owner }, redirect: "manual" });
        const body = await response.text();
        expect(response.status, path).toBe(503);
        expect(body, path).toContain("database is not reachable");
        expect(body).not.toMatch(LEAKS);
      }
      const login = await fetch(`${running.url}/login`, {
        method: "POST",
        redirect: "manual",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: running.url },
        body: new URLSearchParams({ email: "owner@demo.test", password: "attest-demo" }),
      });
      expect(login.status).toBe(503);
      const gql = await fetch(`${running.url}/graphql`, {
        method: "POST",
        headers: { Cookie: owner, Origin: running.url, "Content-Type": "application/json", "X-Tenant": "demo" },
        body: JSON.stringify({ query: "{ currentUser { email } }" }),
      });
      const answer = await gql.text();
      expect(gql.status).toBe(503);
      expect(answer).toContain("DATABASE_UNAVAILABLE");
      expect(answer).not.toMatch(LEAKS);
    } finally {
      await running.close();
      await graphql.release().catch(() => {});
      await dead.end().catch(() => {});
    }

    // A database that goes away while the server runs: PostGraphile itself finds it gone.
    const lost = new pg.Pool({ connectionString: t.db.authUrl, max: 2 });
    lost.on("error", () => {});
    const app2 = createApp({ authPool: lost, visitorRole: t.db.roles.visitor, log: quiet, maxUploadBytes: 1024 });
    const graphql2 = createGraphQL({ authPool: lost, visitorRole: t.db.roles.visitor, log: quiet });
    const running2 = await startServer(app2, "127.0.0.1", 0, (s) => graphql2.addTo(app2, s));
    const anonymous = () =>
      fetch(`${running2.url}/graphql`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ query: "{ incidents { totalCount } }" }),
      });
    try {
      expect((await anonymous()).status).toBe(200);
      await lost.end();
      const response = await anonymous();
      const answer = await response.text();
      expect(response.status, answer).toBe(503);
      expect(answer).toContain("DATABASE_UNAVAILABLE");
      expect(answer).not.toMatch(LEAKS);
    } finally {
      await running2.close();
      await graphql2.release().catch(() => {});
    }
  });
});
