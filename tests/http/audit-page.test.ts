/**
 * The Audit Log page, server side: who gets which page (log, 403, upgrade prompt, sign-in),
 * filters and paging from the URL without JavaScript, htmx fragments, and escaping.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withContext } from "../../src/db/context.ts";
import { csrfToken } from "../../src/web/csrf.ts";
import { createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

describe.each(servers())("Audit Log page on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let owner: string;
  let demo: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
    owner = await web.signIn("owner@demo.test");
    demo = (await ids(t)).tenants.demo;
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  const get = (path: string, cookie?: string, headers: Record<string, string> = {}) =>
    fetch(`${web.url}${path}`, { redirect: "manual", headers: { ...(cookie ? { Cookie: cookie } : {}), ...headers } });
  const rows = (html: string) => html.match(/<details class="log-entry"/g)?.length ?? 0;
  const total = async (where = "true", ...params: unknown[]) =>
    (
      await t.superuser.query(`select count(*)::int as n from app_public.audit_log where tenant_id = $1 and ${where}`, [
        demo,
        ...params,
      ])
    ).rows[0].n as number;

  it("sends a signed-out visitor to sign in, and back afterwards", async () => {
    const response = await get("/t/demo/audit?q=incident");
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe(`/login?next=${encodeURIComponent("/t/demo/audit?q=incident")}`);
  });

  it("shows the owner 25 entries newest first with the four columns", async () => {
    const response = await get("/t/demo/audit", owner);
    expect(response.status).toBe(200);
    const html = await response.text();
    for (const column of ["Timestamp", "User", "Action", "Resource"])
      expect(html).toContain(`role="columnheader">${column}<`);
    expect(rows(html)).toBe(25);
    const seqs = [...html.matchAll(/Log position<\/dt><dd>#(\d+) · sealed/g)].map((m) => Number(m[1]));
    const { rows: sealed } = await t.superuser.query(
      "select max(seq)::int as n from app_hidden.audit_leaves where tenant_id = $1",
      [demo],
    );
    expect(seqs[0]).toBe(sealed[0].n); // newest sealed first; entries still being sealed show as pending
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    expect(html).toContain(`Showing 1–25 of ${await total()}`);
    expect(html).toMatch(/<svg[^>]*role="img"/);
  });

  it("filters by the URL without JavaScript: search, action and dates", async () => {
    const search = await (await get("/t/demo/audit?q=RANSOMWARE", owner)).text();
    const expected = await total(
      "(action || ' ' || actor_label || ' ' || coalesce(resource_label, '')) ilike '%ransomware%'",
    );
    expect(search).toContain(`of ${expected}`);
    expect(search).toContain('value="RANSOMWARE"');
    const byUser = await (await get("/t/demo/audit?q=member%40demo.test", owner)).text();
    expect(byUser).toContain(
      `of ${await total("actor_label = 'member@demo.test' or resource_label ilike '%member@demo.test%'")}`,
    );
    const byAction = await (await get("/t/demo/audit?action=evidence.uploaded", owner)).text();
    expect(byAction).toContain(`of ${await total("action = 'evidence.uploaded'")}`);
    const today = new Date().toISOString().slice(0, 10);
    const range = await (await get(`/t/demo/audit?from=2000-01-01&to=2000-01-31`, owner)).text();
    expect(range).toContain("No entries match these filters.");
    expect(range).toContain('href="/t/demo/audit"'); // clear the filters
    const todayOnly = await (await get(`/t/demo/audit?from=${today}&to=${today}`, owner)).text();
    expect(todayOnly).toContain(`of ${await total("occurred_at >= $2::date", today)}`);
  });

  it("pages 25 at a time, keeping the filters in the page links", async () => {
    const html = await (await get("/t/demo/audit?q=incident&page=2", owner)).text();
    const matching = await total(
      "(action || ' ' || actor_label || ' ' || coalesce(resource_label, '')) ilike '%incident%'",
    );
    expect(html).toContain(`Showing 26–50 of ${matching}`);
    expect(html).toContain('href="/t/demo/audit?q=incident&amp;page=3"');
    expect(html).toContain('aria-current="page" class="current">2<');
    const beyond = await (await get("/t/demo/audit?page=9999", owner)).text();
    expect(rows(beyond)).toBeGreaterThan(0); // clamped to the last page
  });

  it("answers htmx with the results fragment only", async () => {
    const response = await get("/t/demo/audit?q=webhook", owner, {
      "HX-Request": "true",
      "HX-Request-Type": "partial",
    });
    const html = await response.text();
    expect(html).not.toContain("<html");
    expect(html).not.toContain('class="sidebar"');
    expect(rows(html)).toBe(await total("action like 'webhook.%' or resource_label ilike '%webhook%'"));
    const full = await (await get("/t/demo/audit", owner, { "HX-Request": "true", "HX-Request-Type": "full" })).text();
    expect(full).toContain("<html");
  });

  it("refuses members and viewers with a clear 403 page", async () => {
    for (const email of ["member@demo.test", "viewer@demo.test"]) {
      const response = await get("/t/demo/audit", await web.signIn(email));
      expect(response.status).toBe(403);
      const html = await response.text();
      expect(html).toContain("Only owners and admins can see the audit log");
      expect(rows(html)).toBe(0);
    }
  });

  it("shows the upgrade prompt on a plan without auditLog", async () => {
    const response = await get("/t/basic/audit", await web.signIn("owner@basic.test"));
    expect(response.status).toBe(403);
    const html = await response.text();
    expect(html).toContain("Audit Log is not included in the Basic plan");
    expect(html).toContain("Attest is already recording");
    expect(rows(html)).toBe(0);
  });

  it("answers a tenant the user is not in with a 404 page", async () => {
    const response = await get("/t/basic/audit", owner);
    expect(response.status).toBe(404);
    expect(await response.text()).toContain("not a member");
  });

  it("escapes everything users wrote, on the page and in the details", async () => {
    await withContext(t.pools.owner, { surface: "sql" }, (c) =>
      c.query(
        "insert into app_public.incidents (tenant_id, title) values ($1, '<script>alert(1)</script> \"quoted\"')",
        [demo],
      ),
    );
    const html = await (await get("/t/demo/audit?q=alert", owner)).text();
    expect(html).not.toContain("<script>alert(1)</script>");
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/script&gt;");
    const csp = (await get("/t/demo/audit", owner)).headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
  });

  it("verifies the chain on demand, records the result and shows it; a tampered chain shows as broken", async () => {
    const before = await (await get("/t/demo/audit", owner)).text();
    expect(before).toContain("has not been verified yet");
    const verify = () =>
      fetch(`${web.url}/t/demo/audit/verify`, {
        method: "POST",
        redirect: "manual",
        headers: { Cookie: owner, Origin: web.url, "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ _csrf: csrfToken(decodeURIComponent(owner.split("=")[1])) }),
      });
    const withFlash = (response: Response) =>
      `${owner}; ${
        response.headers
          .getSetCookie()
          .find((c) => c.startsWith("attest_flash="))
          ?.split(";")[0] ?? ""
      }`;
    const verified = await verify();
    expect(verified.status).toBe(302);
    const after = await (await get("/t/demo/audit", withFlash(verified))).text();
    expect(after).toContain("The audit log is intact");
    expect(after).toMatch(/Log intact<\/strong> — \d+ sealed entries verified/);
    // A superuser rewrites an entry behind the triggers' back: the next check says where.
    await t.superuser.query(
      "set session_replication_role = replica; update app_public.audit_log e set resource_label = 'rewritten' from app_hidden.audit_leaves l where l.tenant_id = $1 and l.seq = 5 and e.tenant_id = l.tenant_id and e.id = l.entry_id; set session_replication_role = origin;".replace(
        "$1",
        `'${demo}'`,
      ),
    );
    const reverified = await verify();
    const broken = await (await get("/t/demo/audit", withFlash(reverified))).text();
    expect(broken).toContain("The audit log is DAMAGED at position 5");
    expect(broken).toContain("Log damaged</strong> at position 5");
    const { rows } = await t.superuser.query(
      "select valid, first_invalid_seq from app_private.chain_verifications where tenant_id = $1 order by id",
      [demo],
    );
    expect(rows).toEqual([
      { valid: true, first_invalid_seq: null },
      { valid: false, first_invalid_seq: "5" },
    ]);
    const member = await fetch(`${web.url}/t/demo/audit/verify`, {
      method: "POST",
      redirect: "manual",
      headers: { Cookie: await web.signIn("member@demo.test"), Origin: web.url },
    });
    expect(member.status).toBe(403);
  });

  it("shows details of an entry: changed fields, request id, IP, user agent, surface, role, log position", async () => {
    const html = await (await get("/t/demo/audit?action=incident.updated", owner)).text();
    const detail = html.slice(html.indexOf('<div class="log-detail">'), html.indexOf("</details>"));
    expect(detail).toMatch(/class="old[ "]/);
    expect(detail).toMatch(/class="new[ "]/);
    for (const label of ["Request id", "IP", "User agent", "Surface", "Database role", "Log position"]) {
      expect(detail).toContain(`<dt>${label}</dt>`);
    }
    expect(detail).toContain("leaf hash <code");
  });
});
