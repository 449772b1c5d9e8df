/**
 * The workspace pages over HTTP, as a browser without JavaScript (and htmx) would use them:
 * who gets which page (per role and plan), sign-in redirects, CSRF refusals that change nothing,
 * escaping, validation errors with what was typed, and for every successful form post the change
 * in the database and its audit entry (action, the signed-in user, surface web, the response's
 * X-Request-Id). Secrets (webhook secret, API token) are shown once and nowhere else.
 */
import { createHash } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withContext } from "../../src/db/context.ts";
import { csrfToken } from "../../src/http/csrf.ts";
import { asUser, createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const OWNER = "owner@demo.test";
const ADMIN = "admin@demo.test";
const MEMBER = "member@demo.test";
const VIEWER = "viewer@demo.test";
const BASIC_OWNER = "owner@basic.test";
/** The owner of tenant `free` (Free plan: no features at all), created by this test. */
const FREE_OWNER = "owner@free.test";
const DEMO_ROLES = { owner: OWNER, admin: ADMIN, member: MEMBER, viewer: VIEWER } as const;
type Role = keyof typeof DEMO_ROLES;

interface AuditRow {
  tenant: string;
  action: string;
  actor_label: string;
  surface: string;
  request_id: string | null;
  resource_id: string | null;
  resource_label: string | null;
  changes: Record<string, { old?: unknown; new?: unknown }>;
  /** The whole row as JSON text (to check that no secret leaked into it). */
  row_text: string;
}

type Form = Record<string, string | string[]>;
interface PostOptions {
  /** The _csrf field: the session's token by default, null to leave it out, or any other string. */
  csrf?: string | null;
  headers?: Record<string, string>;
}
interface FileToSend {
  name: string;
  data: Buffer;
  type?: string;
}

const sha256 = (data: Buffer | string) => createHash("sha256").update(data).digest("hex");
const htmlText = (s: string) =>
  s
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");

describe.each(servers())("workspace pages on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let userIds: Record<string, string>;
  const cookies: Record<string, string> = {};

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
    userIds = (await ids(t)).users;
    // A tenant on the Free plan (no nis2Timeline, no evidencePacks, …) with its own owner, whose
    // password is the demo password; 21 incidents so that its list has a second page.
    await withContext(t.pools.owner, { surface: "sql" }, async (c) => {
      const tenant = await c.query<{ id: string }>(
        "insert into app_public.tenants (slug, name, plan_id) values ('free', 'Free Trial Co', 'free') returning id",
      );
      const user = await c.query<{ id: string }>(
        "insert into app_public.users (email, name) values ($1, 'Fred Free') returning id",
        [FREE_OWNER],
      );
      await c.query(
        `insert into app_private.user_secrets (user_id, password_hash)
         select $1, s.password_hash from app_private.user_secrets s join app_public.users u on u.id = s.user_id
         where u.email = $2`,
        [user.rows[0].id, OWNER],
      );
      await c.query("insert into app_public.memberships (tenant_id, user_id, role) values ($1, $2, 'owner')", [
        tenant.rows[0].id,
        user.rows[0].id,
      ]);
      for (let i = 1; i <= 21; i++) {
        await c.query(
          "insert into app_public.incidents (tenant_id, title, created_at) values ($1, $2, now() - make_interval(mins => $3))",
          [tenant.rows[0].id, `Free incident ${String(i).padStart(2, "0")}`, 100 - i],
        );
      }
    });
    userIds = (await ids(t)).users;
    // Signing in records session.signed_in entries: every sign-in happens before any measurement.
    for (const email of [OWNER, ADMIN, MEMBER, VIEWER, BASIC_OWNER, FREE_OWNER]) {
      cookies[email] = await web.signIn(email);
    }
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  // -- Requests ---------------------------------------------------------------------------------

  const csrfOf = (email: string) => csrfToken(cookies[email].slice("attest_session=".length));

  const get = (path: string, email?: string, headers: Record<string, string> = {}) =>
    fetch(`${web.url}${path}`, {
      redirect: "manual",
      headers: { ...(email ? { Cookie: cookies[email] } : {}), ...headers },
    });

  /** A form post as the page's form sends it (same origin, the session's _csrf field). */
  const post = (path: string, email: string | undefined, form: Form = {}, options: PostOptions = {}) => {
    const body = new URLSearchParams();
    const csrf = options.csrf === undefined ? (email ? csrfOf(email) : null) : options.csrf;
    if (csrf !== null) body.append("_csrf", csrf);
    for (const [key, value] of Object.entries(form)) {
      for (const v of Array.isArray(value) ? value : [value]) body.append(key, v);
    }
    return fetch(`${web.url}${path}`, {
      method: "POST",
      redirect: "manual",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        Origin: web.url,
        ...(email ? { Cookie: cookies[email] } : {}),
        ...options.headers,
      },
      body,
    });
  };
  const htmx = { "HX-Request": "true", "HX-Request-Type": "partial" };

  /** The evidence upload form (multipart, the token in ?_csrf=), optionally as attest.js sends it (JSON). */
  const upload = (
    incidentPath: string,
    email: string,
    files: FileToSend[],
    options: { json?: boolean; csrf?: string | null } = {},
  ) => {
    const form = new FormData();
    for (const f of files) form.append("files", new Blob([new Uint8Array(f.data)], { type: f.type }), f.name);
    const csrf = options.csrf === undefined ? csrfOf(email) : options.csrf;
    const query = csrf === null ? "" : `?_csrf=${encodeURIComponent(csrf)}`;
    return fetch(`${web.url}${incidentPath}/evidence${query}`, {
      method: "POST",
      redirect: "manual",
      headers: {
        Cookie: cookies[email],
        Origin: web.url,
        ...(options.json ? { Accept: "application/json" } : {}),
      },
      body: form,
    });
  };

  /** The page a redirect leads to, with the one-time message the redirect set. */
  async function follow(response: Response, email: string): Promise<string> {
    expect(response.status).toBe(302);
    const flash = response.headers
      .getSetCookie()
      .find((c) => c.startsWith("attest_flash="))
      ?.split(";")[0];
    const location = response.headers.get("location") ?? "";
    const next = await fetch(`${web.url}${location}`, {
      redirect: "manual",
      headers: { Cookie: [cookies[email], flash].filter(Boolean).join("; ") },
    });
    expect(next.status).toBe(200);
    return next.text();
  }

  // -- Database --------------------------------------------------------------------------------

  /** The audit entries written by one request (found by its X-Request-Id), oldest first. */
  async function auditOf(response: Response): Promise<AuditRow[]> {
    const requestId = response.headers.get("x-request-id");
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    const { rows } = await t.superuser.query<AuditRow>(
      `select t.slug as tenant, a.action, a.actor_label, a.surface, a.request_id, a.resource_id, a.resource_label, a.changes,
              to_jsonb(a)::text as row_text
       from app_public.audit_log a join app_public.tenants t on t.id = a.tenant_id
       where a.request_id = $1 order by a.id`,
      [requestId],
    );
    return rows;
  }

  /** Expects exactly `actions` (in any order) by `email`, on the web surface, with the response's request id. */
  async function expectAudited(response: Response, email: string, ...actions: string[]): Promise<AuditRow[]> {
    const rows = await auditOf(response);
    expect(rows.map((r) => r.action).sort()).toEqual([...actions].sort());
    for (const row of rows) {
      expect(row.actor_label).toBe(email);
      expect(row.surface).toBe("web");
      expect(row.request_id).toBe(response.headers.get("x-request-id"));
    }
    return rows;
  }

  /** Everything a form post could change (every change is audited too, so the log's size counts). */
  async function snapshot(): Promise<Record<string, string>> {
    const digest = (table: string) =>
      `(select md5(coalesce(string_agg(x::text, '|' order by x::text), '')) from ${table} x)`;
    const { rows } = await t.superuser.query(
      `select (select count(*) from app_public.audit_log)::text as audit,
              ${digest("app_public.incidents")} as incidents, ${digest("app_public.evidence")} as evidence,
              ${digest("app_public.nis2_milestones")} as milestones, ${digest("app_public.exports")} as exports,
              ${digest("app_public.webhooks")} as webhooks, ${digest("app_public.memberships")} as memberships,
              ${digest("app_public.api_tokens")} as tokens, ${digest("app_public.invitations")} as invitations`,
    );
    return rows[0];
  }

  /** Expects `fn` to change nothing in the database. */
  async function unchanged<T>(fn: () => Promise<T>): Promise<T> {
    const before = await snapshot();
    const result = await fn();
    expect(await snapshot()).toEqual(before);
    return result;
  }

  async function incidentRow(id: string) {
    const { rows } = await t.superuser.query(
      `select i.*, t.slug from app_public.incidents i join app_public.tenants t on t.id = i.tenant_id where i.id = $1`,
      [id],
    );
    return rows[0];
  }

  /** A fresh incident (created as `email` straight in the database, not through the page). */
  async function newIncident(title: string, tenant = "demo", email = OWNER): Promise<{ id: string; path: string }> {
    const id = await asUser(t, email, tenant, async (c) => {
      const { rows } = await c.query<{ id: string }>(
        "insert into app_public.incidents (title) values ($1) returning id",
        [title],
      );
      return rows[0].id;
    });
    return { id, path: `/t/${tenant}/incidents/${id}` };
  }

  async function milestonesOf(incidentId: string) {
    const { rows } = await t.superuser.query<{
      id: string;
      kind: string;
      completed_at: Date | null;
      completed_by: string | null;
      notes: string | null;
    }>("select id, kind, completed_at, completed_by, notes from app_public.nis2_milestones where incident_id = $1", [
      incidentId,
    ]);
    return Object.fromEntries(rows.map((r) => [r.kind, r]));
  }

  const anIncidentOf = async (slug: string) =>
    (
      await t.superuser.query<{ id: string }>(
        `select i.id from app_public.incidents i join app_public.tenants t on t.id = i.tenant_id
         where t.slug = $1 and i.deleted_at is null order by i.created_at limit 1`,
        [slug],
      )
    ).rows[0].id;

  // ---------------------------------------------------------------------------------------------

  describe("sign-in, home and tenant switching", () => {
    it("sends a signed-out visitor of any page to sign in, and back to that page afterwards", async () => {
      const incident = await anIncidentOf("demo");
      for (const path of [
        "/t/demo/incidents?q=phishing&status=open",
        `/t/demo/incidents/${incident}`,
        `/t/demo/incidents/${incident}/evidence/00000000-0000-4000-8000-000000000000/download`,
        "/t/demo/milestones/overdue",
        "/t/demo/webhooks",
        "/t/demo/members",
        "/t/demo/tokens",
        "/t/demo/audit",
      ]) {
        const response = await get(path);
        expect(response.status, path).toBe(302);
        expect(response.headers.get("location"), path).toBe(`/login?next=${encodeURIComponent(path)}`);
      }
    });

    it("sends a signed-out form post to sign in (to the tenant), changing nothing", async () => {
      const incident = await anIncidentOf("demo");
      await unchanged(async () => {
        for (const [path, form] of [
          ["/t/demo/incidents", { title: "Signed out" }],
          [`/t/demo/incidents/${incident}`, { title: "Signed out" }],
          [`/t/demo/incidents/${incident}/delete`, {}],
          ["/t/demo/webhooks", { url: "https://signed-out.example.com" }],
          ["/t/demo/tokens", { name: "Signed out" }],
          ["/t/demo/members", { email: MEMBER, role: "owner" }],
        ] as Array<[string, Form]>) {
          const response = await post(path, undefined, form, { csrf: "anything" });
          expect(response.status, path).toBe(302);
          expect(response.headers.get("location"), path).toBe(`/login?next=${encodeURIComponent("/t/demo")}`);
        }
      });
    });

    it("tells htmx to go to the sign-in page (401 with HX-Location)", async () => {
      const response = await get("/t/demo/incidents?q=x", undefined, htmx);
      expect(response.status).toBe(401);
      expect(response.headers.get("hx-location")).toBe(`/login?next=${encodeURIComponent("/t/demo/incidents?q=x")}`);
    });

    it("opens a tenant at its incidents, and answers a tenant the user is not in with 404", async () => {
      const root = await get("/t/demo", OWNER);
      expect(root.status).toBe(302);
      expect(root.headers.get("location")).toBe("/t/demo/incidents");
      const foreign = await get("/t/basic/incidents", OWNER);
      expect(foreign.status).toBe(404);
      expect(await foreign.text()).toContain("not a member");
    });

    it("GET / takes a user of a single tenant straight to its incidents", async () => {
      const response = await get("/", OWNER);
      expect(response.status).toBe(302);
      expect(response.headers.get("location")).toBe("/t/demo/incidents");
    });

    it("the sidebar's tenant switcher (GET /switch?tenant=…) opens the chosen tenant", async () => {
      const page = await (await get("/t/demo/incidents", ADMIN)).text();
      expect(page).toContain('action="/switch"');
      expect(page).toMatch(/<select id="tenant-switch" name="tenant"[^>]*>[\s\S]*value="basic"/);
      const response = await get("/switch?tenant=basic", ADMIN);
      expect(response.status).toBe(302);
      expect(response.headers.get("location")).toBe("/t/basic/incidents");
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe("CSRF", () => {
    it("refuses every form post without the _csrf field, or with a wrong one, and changes nothing", async () => {
      const { id, path } = await newIncident("CSRF target");
      await asUser(t, OWNER, "demo", (c) =>
        c.query("update app_public.incidents set nis2_enabled = true where id = $1", [id]),
      );
      const milestone = (await milestonesOf(id)).early_warning.id;
      const evidence = await upload(path, OWNER, [{ name: "csrf.txt", data: Buffer.from("x") }], { json: true });
      const evidenceId = ((await evidence.json()) as { evidence: Array<{ id: string }> }).evidence[0].id;
      const webhook = await asUser(t, OWNER, "demo", async (c) => {
        const { rows } = await c.query("select id from app_public.create_webhook('https://csrf.example.com')");
        return rows[0].id as string;
      });
      const token = await asUser(t, OWNER, "demo", async (c) => {
        const { rows } = await c.query("select id from app_public.create_api_token('CSRF token')");
        return rows[0].id as string;
      });
      const routes: Array<[string, Form]> = [
        ["/t/demo/incidents", { title: "Forged", severity: "low" }],
        [path, { title: "Forged" }],
        [`${path}/delete`, {}],
        [`${path}/nis2`, { enabled: "false" }],
        [`${path}/milestones/${milestone}/complete`, { notes: "Forged" }],
        [`${path}/evidence/${evidenceId}/delete`, {}],
        [`${path}/exports`, {}],
        ["/t/demo/webhooks", { url: "https://forged.example.com" }],
        [`/t/demo/webhooks/${webhook}/delete`, {}],
        ["/t/demo/members", { email: "owner@basic.test", role: "owner" }],
        [`/t/demo/members/${userIds[MEMBER]}/role`, { role: "owner" }],
        [`/t/demo/members/${userIds[MEMBER]}/remove`, {}],
        ["/t/demo/tokens", { name: "Forged" }],
        [`/t/demo/tokens/${token}/revoke`, {}],
      ];
      const wrong = csrfOf(ADMIN); // a real token, but of another session
      await unchanged(async () => {
        for (const [route, form] of routes) {
          for (const csrf of [null, "", wrong, `${csrfOf(OWNER)}x`]) {
            const response = await post(route, OWNER, form, { csrf });
            expect(response.status, `${route} with _csrf=${csrf}`).toBe(403);
            expect(await response.text()).toContain("This form has expired or did not come from Attest");
          }
        }
        for (const csrf of [null, wrong]) {
          const response = await upload(path, OWNER, [{ name: "forged.txt", data: Buffer.from("forged") }], {
            csrf,
            json: true,
          });
          expect(response.status).toBe(403);
          expect(((await response.json()) as { error: { code: string } }).error.code).toBe("CSRF");
        }
        // The right token from another site is refused too (Origin check).
        const crossSite = await post(
          "/t/demo/incidents",
          OWNER,
          { title: "Cross-site" },
          { headers: { Origin: "https://evil.example" } },
        );
        expect(crossSite.status).toBe(403);
      });
    });

    it("accepts the token in the X-CSRF-Token header instead of the field (as htmx sends it)", async () => {
      const { id, path } = await newIncident("Header token");
      const response = await post(
        path,
        MEMBER,
        { title: "Header token, saved" },
        { csrf: null, headers: { ...htmx, "X-CSRF-Token": csrfOf(MEMBER) } },
      );
      expect(response.status).toBe(200);
      expect((await incidentRow(id)).title).toBe("Header token, saved");
      await expectAudited(response, MEMBER, "incident.updated");
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe("Incidents list", () => {
    it.each(Object.entries(DEMO_ROLES))("shows the %s the list", async (role, email) => {
      const response = await get("/t/demo/incidents", email);
      expect(response.status).toBe(200);
      const html = await response.text();
      const { rows } = await t.superuser.query(
        "select count(*)::int as n from app_public.incidents i join app_public.tenants t on t.id = i.tenant_id where t.slug = 'demo' and i.deleted_at is null",
      );
      expect(html).toContain(`Showing 1–${Math.min(20, rows[0].n)} of ${rows[0].n}`);
      if (role === "viewer") {
        expect(html).not.toContain('id="incident-create"');
        expect(html).toContain("You are a viewer");
      } else {
        expect(html).toContain('id="incident-create"');
        expect(html).toContain(`name="_csrf" value="${csrfOf(email)}"`);
      }
    });

    it("filters by title, status, age and deletion, and pages 20 at a time, all from the URL", async () => {
      const titles = (html: string) =>
        [...html.matchAll(/class="inc-title-cell"[^>]*>\s*<a href="[^"]+">([^<]*)</g)].map((m) => htmlText(m[1]));
      const search = titles(await (await get("/t/demo/incidents?q=RANSOMWARE", OWNER)).text());
      expect(search).toEqual(["Ransomware detected on file server FS-02"]);

      const closed = await t.superuser.query<{ title: string }>(
        "select i.title from app_public.incidents i join app_public.tenants t on t.id = i.tenant_id where t.slug = 'demo' and i.deleted_at is null and i.status = 'closed'",
      );
      const byStatus = await (await get("/t/demo/incidents?status=closed", OWNER)).text();
      expect(titles(byStatus).sort()).toEqual(closed.rows.map((r) => r.title).sort());
      expect(byStatus).toContain('aria-current="true"><span class="inc-dot" aria-hidden="true"></span>Closed');

      const recent = titles(await (await get("/t/demo/incidents?days=7", OWNER)).text());
      expect(recent).toContain("Ransomware detected on file server FS-02");
      expect(recent).not.toContain("DDoS against the customer portal"); // 40 days old
      expect(titles(await (await get("/t/demo/incidents?days=90", OWNER)).text())).toContain(
        "DDoS against the customer portal",
      );

      const deleted = await (await get("/t/demo/incidents?deleted=1", MEMBER)).text();
      expect(titles(deleted)).toContain("Duplicate report: phishing email");
      expect(deleted).toContain("<h1>Deleted incidents</h1>");
      expect(deleted).toMatch(/\/restore">/);
      expect(titles(await (await get("/t/demo/incidents", MEMBER)).text())).not.toContain(
        "Duplicate report: phishing email",
      );

      const first = await (await get("/t/free/incidents", FREE_OWNER)).text();
      expect(titles(first)).toHaveLength(20);
      expect(first).toContain("Showing 1–20 of 21");
      expect(first).toContain('href="/t/free/incidents?page=2"');
      const second = await (await get("/t/free/incidents?page=2", FREE_OWNER)).text();
      expect(titles(second)).toEqual(["Free incident 01"]);
      expect(second).toContain("Showing 21–21 of 21");
    });

    it("answers htmx with the results fragment only", async () => {
      const response = await get("/t/demo/incidents?q=phishing", OWNER, htmx);
      expect(response.status).toBe(200);
      const html = await response.text();
      expect(html).not.toContain("<html");
      expect(html).not.toContain('class="sidebar"');
      expect(html).toContain("Phishing campaign targeting the finance team");
      expect(html).toContain('id="filter-status"');
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe("Creating an incident (POST /incidents)", () => {
    it.each(["owner", "admin", "member"] as Role[])(
      "lets the %s create one, recorded as incident.created",
      async (role) => {
        const email = DEMO_ROLES[role];
        const title = `Created by the ${role}`;
        const response = await post("/t/demo/incidents", email, {
          title: `  ${title}  `,
          severity: "critical",
          description: "Line one\r\nLine two",
        });
        expect(response.status).toBe(302);
        const id = /^\/t\/demo\/incidents\/([0-9a-f-]{36})$/.exec(response.headers.get("location") ?? "")?.[1] ?? "";
        const row = await incidentRow(id);
        expect(row).toMatchObject({
          slug: "demo",
          title,
          severity: "critical",
          status: "open",
          description: "Line one\nLine two",
          created_by: userIds[email],
        });
        const [entry] = await expectAudited(response, email, "incident.created");
        expect(entry.resource_label).toBe(title);
        expect(await follow(response, email)).toContain(`Incident “${title}” created.`);
      },
    );

    it("refuses a viewer with 403 and says why, creating nothing", async () => {
      const response = await unchanged(() =>
        post("/t/demo/incidents", VIEWER, { title: "By the viewer", severity: "low", description: "" }),
      );
      expect(response.status).toBe(403);
      expect(await response.text()).toContain("as a viewer of Demo Energy GmbH you may not create incidents");
    });

    it("shows the database's message and what was typed when the title is too long or the severity unknown", async () => {
      const long = `A${"x".repeat(255)}`;
      const tooLong = await unchanged(() =>
        post("/t/demo/incidents", MEMBER, { title: long, severity: "high", description: "Typed <description>" }),
      );
      expect(tooLong.status).toBe(400);
      let html = await tooLong.text();
      expect(html).toContain("The title must be 1 to 255 characters and not blank.");
      expect(html).toContain(`id="new-title" name="title" type="text" value="${long}"`);
      expect(html).toContain("Typed &lt;description&gt;</textarea>");
      expect(html).toMatch(/<details id="incident-create" class="inc-create" open>/);

      const severity = await unchanged(() =>
        post("/t/demo/incidents", MEMBER, { title: "Severity typo", severity: "urgent", description: "" }),
      );
      expect(severity.status).toBe(400);
      html = await severity.text();
      expect(html).toContain("The severity must be low, medium, high or critical.");
      expect(html).toContain('value="Severity typo"');

      const blank = await unchanged(() =>
        post("/t/demo/incidents", MEMBER, { title: "   ", severity: "low" }, { headers: htmx }),
      );
      expect(blank.status).toBe(400);
      html = await blank.text();
      expect(html).not.toContain("<html");
      expect(html).toContain('id="incident-create"');
      expect(html).toContain("The title must be 1 to 255 characters and not blank.");
    });

    it("escapes a title with markup on the list, the incident page and the audit log", async () => {
      const title = "<script>alert(1)</script>";
      const response = await post("/t/demo/incidents", MEMBER, { title, severity: "low", description: "" });
      expect(response.status).toBe(302);
      const escaped = "&lt;script&gt;alert(1)&lt;/script&gt;";
      const pages = [
        await follow(response, MEMBER), // the incident page, with the "created" message
        await (await get("/t/demo/incidents", MEMBER)).text(),
        await (await get("/t/demo/incidents?q=script", MEMBER)).text(),
        await (await get("/t/demo/audit?q=alert", OWNER)).text(),
      ];
      for (const html of pages) {
        // (the Audit Log may add soft breaks, <wbr>, inside a long word: render.ts breakable)
        const text = html.replaceAll("<wbr>", "");
        expect(text).toContain(escaped);
        expect(text).not.toContain(title);
        expect(html).not.toMatch(/<script>alert/i);
      }
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe("An incident's page (GET /incidents/:id)", () => {
    it.each(Object.entries(DEMO_ROLES))(
      "shows the %s the incident with the controls of their role",
      async (role, email) => {
        const id = await anIncidentOf("demo");
        const response = await get(`/t/demo/incidents/${id}`, email);
        expect(response.status).toBe(200);
        const html = await response.text();
        expect(html).toContain((await incidentRow(id)).title);
        const forms = html.match(/name="_csrf"/g)?.length ?? 0;
        if (role === "viewer") {
          expect(forms).toBe(0);
          expect(html).toContain("You are a viewer of Demo Energy GmbH");
          for (const control of [
            'class="inc-edit"',
            'id="evidence-files"',
            "Delete incident",
            "Mark complete",
            "Request evidence pack",
          ]) {
            expect(html).not.toContain(control);
          }
        } else {
          expect(forms).toBeGreaterThan(0);
          for (const control of ['class="inc-edit"', 'id="evidence-files"', "Delete incident"]) {
            expect(html).toContain(control);
          }
        }
        const manager = role === "owner" || role === "admin";
        expect(html.includes("Request evidence pack")).toBe(manager);
        expect(html.includes('aria-label="Audit entries of this incident"')).toBe(manager);
      },
    );

    it("answers an unknown id, a malformed id and another tenant's incident with 404", async () => {
      const basicIncident = await anIncidentOf("basic");
      for (const path of [
        "/t/demo/incidents/6f1c1f0e-0000-4000-8000-000000000000",
        "/t/demo/incidents/not-a-uuid",
        `/t/demo/incidents/${basicIncident}`,
      ]) {
        const response = await get(path, OWNER);
        expect(response.status, path).toBe(404);
        expect(await response.text()).toContain("There is no such incident in this tenant.");
      }
    });

    it("opens a field's form without JavaScript (?edit=title)", async () => {
      const { path } = await newIncident("Edit link");
      const html = await (await get(`${path}?edit=title`, MEMBER)).text();
      expect(html).toContain('id="input-title" name="title" type="text" value="Edit link"');
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe("Editing an incident (POST /incidents/:id)", () => {
    const edits: Array<[string, string, unknown]> = [
      ["title", "  Renamed incident  ", "Renamed incident"],
      ["description", "New description\r\nsecond line", "New description\nsecond line"],
      ["severity", "critical", "critical"],
      ["status", "in_progress", "in_progress"],
      ["root_cause", "A leaked password", "A leaked password"],
      ["lessons_learned", "Rotate passwords", "Rotate passwords"],
    ];
    it.each(edits)("saves the %s, recorded as incident.updated", async (key, typed, stored) => {
      const { id, path } = await newIncident(`Edit ${key}`);
      const response = await post(path, MEMBER, { [key]: typed });
      expect(response.status).toBe(302);
      expect(response.headers.get("location")).toBe(`${path}#field-${key}`);
      expect((await incidentRow(id))[key]).toBe(stored);
      const [entry] = await expectAudited(response, MEMBER, "incident.updated");
      expect(Object.keys(entry.changes)).toEqual([key]);
      expect(entry.changes[key].new).toBe(stored);
      expect(await follow(response, MEMBER)).toContain(`Saved the ${key.replace("_", " ")}.`);
    });

    it("answers htmx with the field's fragment and tells the page it changed", async () => {
      const { id, path } = await newIncident("Inline edit");
      const response = await post(path, ADMIN, { title: "Inline edit, saved" }, { headers: htmx });
      expect(response.status).toBe(200);
      expect(response.headers.get("hx-trigger")).toBe("incidentChanged");
      const html = await response.text();
      expect(html).not.toContain("<html");
      expect(html).toContain('id="field-title"');
      expect(html).toContain("Inline edit, saved");
      expect(html).toContain("Saved.");
      expect((await incidentRow(id)).title).toBe("Inline edit, saved");
      await expectAudited(response, ADMIN, "incident.updated");
    });

    it("records nothing when nothing changed", async () => {
      const { path } = await newIncident("Same title");
      const response = await unchanged(() => post(path, MEMBER, { title: "Same title" }));
      expect(await follow(response, MEMBER)).toContain("Nothing changed.");
    });

    it("shows the database's message and what was typed, changing nothing", async () => {
      const { path } = await newIncident("Validated");
      const long = `T${"y".repeat(255)}`;
      const cases: Array<[Form, string, string]> = [
        [{ title: long }, "The title must be 1 to 255 characters and not blank.", `value="${long}"`],
        [{ title: "   " }, "The title must be 1 to 255 characters and not blank.", 'id="input-title"'],
        [
          { description: `<b>${"d".repeat(4000)}</b>` },
          "The description may be at most 4000 characters.",
          `&lt;b&gt;${"d".repeat(4000)}&lt;/b&gt;</textarea>`,
        ],
        [
          { root_cause: "r".repeat(4001) },
          "The root cause may be at most 4000 characters.",
          `${"r".repeat(4001)}</textarea>`,
        ],
        [{ status: "done" }, "The status must be open, in_progress, resolved or closed.", 'id="field-status"'],
        [{ severity: "urgent" }, "The severity must be low, medium, high or critical.", 'id="field-severity"'],
      ];
      for (const [form, message, typed] of cases) {
        const response = await unchanged(() => post(path, MEMBER, form));
        expect(response.status, JSON.stringify(form).slice(0, 40)).toBe(400);
        const html = await response.text();
        expect(html).toContain(message);
        expect(html).toContain(typed);
        expect(html).toContain('aria-invalid="true"');
      }
      const nothing = await unchanged(() => post(path, MEMBER, { unknown: "x" }));
      expect(nothing.status).toBe(400);
      expect(await nothing.text()).toContain("Nothing to save");
    });

    it("refuses a viewer with 403 and the database's refusal, changing nothing", async () => {
      const { path } = await newIncident("Viewer edit");
      const response = await unchanged(() => post(path, VIEWER, { title: "Changed by the viewer" }));
      expect(response.status).toBe(403);
      expect(await response.text()).toContain("as a viewer of Demo Energy GmbH you may not change incidents");
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe("Deleting and restoring an incident", () => {
    it("lets a member delete it (incident.deleted) and an admin restore it (incident.restored)", async () => {
      const { id, path } = await newIncident("Delete me");
      const deleted = await post(`${path}/delete`, MEMBER);
      expect(deleted.status).toBe(302);
      expect(deleted.headers.get("location")).toBe("/t/demo/incidents");
      const row = await incidentRow(id);
      expect(row.deleted_at).not.toBeNull();
      expect(row.deleted_by).toBe(userIds[MEMBER]);
      await expectAudited(deleted, MEMBER, "incident.deleted");
      expect(await follow(deleted, MEMBER)).toContain("Deleted “Delete me”. It is kept under Deleted incidents");
      const list = await (await get("/t/demo/incidents?deleted=1", MEMBER)).text();
      expect(list).toContain(`action="${path}/restore"`);
      const page = await (await get(path, MEMBER)).text();
      expect(page).toContain("This incident is deleted.");
      expect(page).not.toContain('class="inc-edit"');

      const again = await unchanged(() => post(`${path}/delete`, MEMBER));
      expect(await follow(again, MEMBER)).toContain("This incident is already deleted.");
      const edit = await unchanged(() => post(path, MEMBER, { title: "Edited while deleted" }));
      expect(edit.status).toBe(409);

      const restored = await post(`${path}/restore`, ADMIN);
      expect(restored.status).toBe(302);
      expect(restored.headers.get("location")).toBe(path);
      expect((await incidentRow(id)).deleted_at).toBeNull();
      await expectAudited(restored, ADMIN, "incident.restored");
      expect(await follow(restored, ADMIN)).toContain("Restored “Delete me”.");
    });

    it("refuses a viewer (message on the incident page), changing nothing", async () => {
      const { path } = await newIncident("Viewer delete");
      const response = await unchanged(() => post(`${path}/delete`, VIEWER));
      expect(response.headers.get("location")).toBe(path);
      expect(await follow(response, VIEWER)).toContain("as a viewer of Demo Energy GmbH you may not delete incidents");
      const deleted = await newIncident("Viewer restore");
      await asUser(t, OWNER, "demo", (c) => c.query("select app_public.delete_incident($1)", [deleted.id]));
      const restore = await unchanged(() => post(`${deleted.path}/restore`, VIEWER));
      expect(await follow(restore, VIEWER)).toContain("you may not restore incidents");
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe("Evidence", () => {
    const files = [
      { name: "firewall.log", data: Buffer.from("deny tcp 203.0.113.9 -> 10.0.0.5:3389\n"), type: "text/plain" },
      { name: "capture-東京.bin", data: Buffer.from([0, 1, 2, 3, 255]), type: "application/octet-stream" },
    ];

    it("uploads several files for attest.js (201 JSON), one evidence.uploaded each", async () => {
      const { id, path } = await newIncident("Evidence upload");
      const response = await upload(path, MEMBER, files, { json: true });
      expect(response.status).toBe(201);
      const body = (await response.json()) as {
        evidence: Array<{ id: string; filename: string; sha256: string; sizeBytes: number }>;
      };
      expect(body.evidence.map((e) => [e.filename, e.sha256, e.sizeBytes])).toEqual(
        files.map((f) => [f.name, sha256(f.data), f.data.length]),
      );
      const { rows } = await t.superuser.query(
        'select filename, size_bytes::int as size, uploaded_by from app_public.evidence where incident_id = $1 order by filename collate "C"',
        [id],
      );
      expect(rows).toEqual(
        files
          .map((f) => ({ filename: f.name, size: f.data.length, uploaded_by: userIds[MEMBER] }))
          .sort((a, b) => (a.filename < b.filename ? -1 : 1)),
      );
      const entries = await expectAudited(response, MEMBER, "evidence.uploaded", "evidence.uploaded");
      expect(entries.map((e) => e.resource_label).sort()).toEqual(files.map((f) => f.name).sort());
    });

    it("uploads with the plain form (302 back to the evidence, with a message)", async () => {
      const { path } = await newIncident("Evidence form");
      const response = await upload(path, OWNER, files);
      expect(response.status).toBe(302);
      expect(response.headers.get("location")).toBe(`${path}#evidence`);
      await expectAudited(response, OWNER, "evidence.uploaded", "evidence.uploaded");
      const html = await follow(response, OWNER);
      expect(html).toContain("Uploaded 2 files: “firewall.log”, “capture-東京.bin”.");
      expect(html).toContain(`${path}/evidence/`);
    });

    it("refuses a file over the limit (413 TOO_LARGE, or a message), saving nothing", async () => {
      const { path } = await newIncident("Evidence too large");
      const big = { name: "big.bin", data: Buffer.alloc(1024 * 1024 + 1, 7) };
      const json = await unchanged(() => upload(path, MEMBER, [files[0], big], { json: true }));
      expect(json.status).toBe(413);
      const error = ((await json.json()) as { error: { code: string; message: string } }).error;
      expect(error.code).toBe("TOO_LARGE");
      expect(error.message).toContain('"big.bin" is larger than the 1 MB limit; nothing was saved.');
      const form = await unchanged(() => upload(path, MEMBER, [big]));
      expect(await follow(form, MEMBER)).toContain("is larger than the 1 MB limit; nothing was saved.");
    });

    it("refuses a viewer (403) and an upload without files (400), saving nothing", async () => {
      const { path } = await newIncident("Evidence refused");
      const viewer = await unchanged(() => upload(path, VIEWER, files, { json: true }));
      expect(viewer.status).toBe(403);
      expect(((await viewer.json()) as { error: { code: string } }).error.code).toBe("FORBIDDEN");
      const empty = await unchanged(() => upload(path, MEMBER, [], { json: true }));
      expect(empty.status).toBe(400);
      expect(((await empty.json()) as { error: { message: string } }).error.message).toBe(
        "Choose at least one file to upload.",
      );
    });

    it("downloads a file for every role, only under its own incident", async () => {
      const { path } = await newIncident("Evidence download");
      const uploaded = (await (await upload(path, MEMBER, files, { json: true })).json()) as {
        evidence: Array<{ id: string; filename: string }>;
      };
      const file = uploaded.evidence[0];
      for (const email of Object.values(DEMO_ROLES)) {
        const response = await get(`${path}/evidence/${file.id}/download`, email);
        expect(response.status, email).toBe(200);
        expect(response.headers.get("content-disposition")).toMatch(/^attachment; filename="[\x20-\x7e]+"; /);
        expect(response.headers.get("content-disposition")).toContain(
          `; filename*=UTF-8''${encodeURIComponent(file.filename)}`,
        );
        expect(response.headers.get("x-content-sha256")).toBe(sha256(files[0].data));
        expect(Buffer.from(await response.arrayBuffer())).toEqual(files[0].data);
      }
      const other = await newIncident("Another incident");
      expect((await get(`${other.path}/evidence/${file.id}/download`, OWNER)).status).toBe(404);
      expect(
        (await get(`/t/basic/incidents/${await anIncidentOf("basic")}/evidence/${file.id}/download`, BASIC_OWNER))
          .status,
      ).toBe(404);
    });

    it("deletes a file (evidence.deleted), for plain forms and htmx; a viewer may not", async () => {
      const { id, path } = await newIncident("Evidence delete");
      const uploaded = (await (await upload(path, MEMBER, files, { json: true })).json()) as {
        evidence: Array<{ id: string; filename: string }>;
      };
      const [first, second] = uploaded.evidence;

      const viewer = await unchanged(() => post(`${path}/evidence/${first.id}/delete`, VIEWER));
      expect(await follow(viewer, VIEWER)).toContain("as a viewer of Demo Energy GmbH you may not delete evidence");
      const viewerHtmx = await unchanged(() =>
        post(`${path}/evidence/${first.id}/delete`, VIEWER, {}, { headers: htmx }),
      );
      expect(viewerHtmx.status).toBe(403);

      const response = await post(`${path}/evidence/${first.id}/delete`, MEMBER);
      expect(response.status).toBe(302);
      expect(response.headers.get("location")).toBe(`${path}#evidence`);
      const [entry] = await expectAudited(response, MEMBER, "evidence.deleted");
      expect(entry.resource_label).toBe(first.filename);
      expect(await follow(response, MEMBER)).toContain(`Deleted “${first.filename}”.`);

      const fragment = await post(`${path}/evidence/${second.id}/delete`, ADMIN, {}, { headers: htmx });
      expect(fragment.status).toBe(200);
      expect(fragment.headers.get("hx-trigger")).toBe("incidentChanged");
      const html = await fragment.text();
      expect(html).not.toContain("<html");
      expect(html).toContain('id="evidence-list"');
      expect(html).toContain("No evidence yet.");
      await expectAudited(fragment, ADMIN, "evidence.deleted");
      const { rows } = await t.superuser.query(
        "select count(*)::int as n from app_public.evidence where incident_id = $1",
        [id],
      );
      expect(rows[0].n).toBe(0);

      const gone = await unchanged(() => post(`${path}/evidence/${first.id}/delete`, MEMBER));
      expect(await follow(gone, MEMBER)).toContain("That evidence file is not attached to this incident (any more).");
    });

    it("refuses uploads to a deleted incident", async () => {
      const { id, path } = await newIncident("Deleted, no uploads");
      await asUser(t, OWNER, "demo", (c) => c.query("select app_public.delete_incident($1)", [id]));
      const response = await unchanged(() => upload(path, MEMBER, files, { json: true }));
      expect(response.status).toBe(409);
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe("NIS2 reporting and milestones", () => {
    it("turns NIS2 on (incident.updated and three milestone.created) and off again", async () => {
      const { id, path } = await newIncident("NIS2 on");
      const on = await post(`${path}/nis2`, MEMBER, { enabled: "true" });
      expect(on.status).toBe(302);
      expect(on.headers.get("location")).toBe(`${path}#nis2`);
      expect((await incidentRow(id)).nis2_enabled).toBe(true);
      expect(Object.keys(await milestonesOf(id)).sort()).toEqual([
        "early_warning",
        "final_report",
        "full_notification",
      ]);
      const entries = await expectAudited(
        on,
        MEMBER,
        "incident.updated",
        "milestone.created",
        "milestone.created",
        "milestone.created",
      );
      expect(entries.find((e) => e.action === "incident.updated")?.changes).toEqual({
        nis2_enabled: { old: false, new: true },
      });
      expect(await follow(on, MEMBER)).toContain("NIS2 reporting is on");

      const off = await post(`${path}/nis2`, MEMBER, { enabled: "false" }, { headers: htmx });
      expect(off.status).toBe(200);
      const html = await off.text();
      expect(html).toContain('id="nis2"');
      expect(html).toContain("NIS2 reporting is off.");
      expect((await incidentRow(id)).nis2_enabled).toBe(false);
      expect(Object.keys(await milestonesOf(id))).toHaveLength(3);
      await expectAudited(off, MEMBER, "incident.updated");
    });

    it("answers 402 on a plan without nis2Timeline, changing nothing", async () => {
      const { id, path } = await newIncident("Free NIS2", "free", FREE_OWNER);
      const fragment = await unchanged(() => post(`${path}/nis2`, FREE_OWNER, { enabled: "true" }, { headers: htmx }));
      expect(fragment.status).toBe(402);
      expect(await fragment.text()).toContain(
        "NIS2 reporting is not in your plan. Upgrade to a plan with the nis2Timeline feature.",
      );
      const form = await unchanged(() => post(`${path}/nis2`, FREE_OWNER, { enabled: "true" }));
      expect(await follow(form, FREE_OWNER)).toContain("NIS2 reporting is not in your plan.");
      expect((await incidentRow(id)).nis2_enabled).toBe(false);
      const page = await (await get(path, FREE_OWNER)).text();
      expect(page).toContain("Not in the Free plan.");
    });

    it("refuses a viewer (403), changing nothing", async () => {
      const { path } = await newIncident("Viewer NIS2");
      const response = await unchanged(() => post(`${path}/nis2`, VIEWER, { enabled: "true" }, { headers: htmx }));
      expect(response.status).toBe(403);
      expect(await response.text()).toContain("you may not change incidents");
    });

    /** A fresh incident with NIS2 reporting on, and its milestones. */
    async function withMilestones(title: string) {
      const incident = await newIncident(title);
      await asUser(t, OWNER, "demo", (c) =>
        c.query("update app_public.incidents set nis2_enabled = true where id = $1", [incident.id]),
      );
      return { ...incident, milestones: await milestonesOf(incident.id) };
    }

    it("completes a milestone with notes (milestone.completed)", async () => {
      const { id, path, milestones } = await withMilestones("Milestones");
      const early = milestones.early_warning;
      const response = await post(`${path}/milestones/${early.id}/complete`, MEMBER, {
        notes: "Sent to the CSIRT\r\nref 42",
      });
      expect(response.status).toBe(302);
      expect(response.headers.get("location")).toBe(`${path}#nis2`);
      const done = (await milestonesOf(id)).early_warning;
      expect(done.completed_at).not.toBeNull();
      expect(done.completed_by).toBe(userIds[MEMBER]);
      expect(done.notes).toBe("Sent to the CSIRT\nref 42");
      const [entry] = await expectAudited(response, MEMBER, "milestone.completed");
      expect(entry.resource_label).toBe("Early Warning · Milestones");
      const page = await follow(response, MEMBER);
      expect(page).toContain("Early warning marked complete.");
      expect(page).toContain("Sent to the CSIRT\nref 42");
    });

    it("answers completing a completed milestone again with 409 and says so, changing nothing", async () => {
      const { path, milestones } = await withMilestones("Completed twice");
      const early = milestones.early_warning;
      expect((await post(`${path}/milestones/${early.id}/complete`, MEMBER, { notes: "first" })).status).toBe(302);
      const again = await unchanged(() => post(`${path}/milestones/${early.id}/complete`, MEMBER, { notes: "again" }));
      expect(again.status).toBe(409);
      expect(await again.text()).toContain("The early warning is already completed.");
    });

    it("shows the notes' limit and what was typed, changing nothing", async () => {
      const { path, milestones } = await withMilestones("Milestone notes");
      const notes = `<i>${"n".repeat(4000)}</i>`;
      const tooLong = await unchanged(() =>
        post(`${path}/milestones/${milestones.full_notification.id}/complete`, MEMBER, { notes }),
      );
      expect(tooLong.status).toBe(400);
      const html = await tooLong.text();
      expect(html).toContain("Milestone notes may be at most 4000 characters.");
      expect(html).toContain(`&lt;i&gt;${"n".repeat(4000)}&lt;/i&gt;</textarea>`);
    });

    it("refuses a viewer with 403 and says why, changing nothing", async () => {
      const { path, milestones } = await withMilestones("Viewer milestone");
      const viewer = await unchanged(() =>
        post(`${path}/milestones/${milestones.early_warning.id}/complete`, VIEWER, { notes: "viewer" }),
      );
      expect(viewer.status).toBe(403);
      expect(await viewer.text()).toContain("as a viewer of Demo Energy GmbH you may not complete milestones");
    });

    it("answers a milestone of another incident with 404, changing nothing", async () => {
      const { milestones } = await withMilestones("Milestone elsewhere");
      const other = await newIncident("Other milestones");
      const foreign = await unchanged(() =>
        post(`${other.path}/milestones/${milestones.early_warning.id}/complete`, MEMBER, { notes: "" }),
      );
      expect(foreign.status).toBe(404);
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe("Evidence packs (POST /incidents/:id/exports)", () => {
    it.each(["owner", "admin"] as Role[])("lets the %s request one (export.requested)", async (role) => {
      const email = DEMO_ROLES[role];
      const { id, path } = await newIncident(`Pack by the ${role}`);
      const response = await post(`${path}/exports`, email);
      expect(response.status).toBe(302);
      expect(response.headers.get("location")).toBe(`${path}#exports`);
      const { rows } = await t.superuser.query(
        "select status, requested_by from app_public.exports where incident_id = $1",
        [id],
      );
      expect(rows).toEqual([{ status: "queued", requested_by: userIds[email] }]);
      const [entry] = await expectAudited(response, email, "export.requested");
      expect(entry.resource_label).toBe(`Evidence pack · Pack by the ${role}`);
      expect(await follow(response, email)).toContain("Evidence pack requested.");

      const fragment = await post(`${path}/exports`, email, {}, { headers: htmx });
      expect(fragment.status).toBe(200);
      const html = await fragment.text();
      expect(html).not.toContain("<html");
      expect(html).toContain('id="exports"');
      expect(html).toContain("Queued");
      await expectAudited(fragment, email, "export.requested");
    });

    it.each(["member", "viewer"] as Role[])("refuses the %s (403), requesting nothing", async (role) => {
      const email = DEMO_ROLES[role];
      const { path } = await newIncident(`Pack refused for the ${role}`);
      const fragment = await unchanged(() => post(`${path}/exports`, email, {}, { headers: htmx }));
      expect(fragment.status).toBe(403);
      expect(await fragment.text()).toContain("you may not request evidence packs (owners and admins can)");
      const form = await unchanged(() => post(`${path}/exports`, email));
      expect(await follow(form, email)).toContain("you may not request evidence packs");
    });

    it("answers 402 on a plan without evidencePacks, requesting nothing", async () => {
      const path = `/t/basic/incidents/${await anIncidentOf("basic")}`;
      const fragment = await unchanged(() => post(`${path}/exports`, BASIC_OWNER, {}, { headers: htmx }));
      expect(fragment.status).toBe(402);
      expect(await fragment.text()).toContain("Evidence packs are not included in the Basic plan.");
      const form = await unchanged(() => post(`${path}/exports`, BASIC_OWNER));
      expect(await follow(form, BASIC_OWNER)).toContain("Evidence packs are not included in the Basic plan.");
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe("Overdue Milestones (GET /milestones/overdue)", () => {
    it.each(Object.entries(DEMO_ROLES))("shows the %s the overdue and due-soon milestones", async (_role, email) => {
      const response = await get("/t/demo/milestones/overdue", email);
      expect(response.status).toBe(200);
      const html = await response.text();
      const { rows } = await t.superuser.query<{ overdue: number; soon: number }>(
        `select count(*) filter (where m.due_at < now())::int as overdue,
                count(*) filter (where m.due_at >= now() and m.due_at < now() + interval '72 hours')::int as soon
         from app_public.nis2_milestones m join app_public.incidents i on i.id = m.incident_id
         join app_public.tenants t on t.id = i.tenant_id
         where t.slug = 'demo' and i.deleted_at is null and m.completed_at is null`,
      );
      expect(rows[0].overdue).toBeGreaterThan(0);
      expect(html).toContain(`Overdue <span class="count">${rows[0].overdue}</span>`);
      expect(html).toContain(`Due in the next 72 hours <span class="count">${rows[0].soon}</span>`);
      expect(html).toContain("Lost laptop with unencrypted backups");
    });

    it("leaves deleted incidents out", async () => {
      const { id } = await newIncident("Deleted with overdue milestones");
      await withContext(t.pools.owner, { surface: "sql" }, async (c) => {
        await c.query(
          "update app_public.incidents set created_at = now() - interval '5 days', nis2_enabled = true where id = $1",
          [id],
        );
      });
      expect(await (await get("/t/demo/milestones/overdue", OWNER)).text()).toContain(
        "Deleted with overdue milestones",
      );
      await asUser(t, OWNER, "demo", (c) => c.query("select app_public.delete_incident($1)", [id]));
      expect(await (await get("/t/demo/milestones/overdue", OWNER)).text()).not.toContain(
        "Deleted with overdue milestones",
      );
    });

    it("shows the upgrade prompt on a plan without nis2Timeline", async () => {
      expect((await get("/t/basic/milestones/overdue", BASIC_OWNER)).status).toBe(200);
      const response = await get("/t/free/milestones/overdue", FREE_OWNER);
      expect(response.status).toBe(403);
      const html = await response.text();
      expect(html).toContain("NIS2 timeline is not included in the Free plan");
      expect(html).not.toContain("Overdue <span");
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe("Webhooks", () => {
    it.each([
      [OWNER, 200, "Add a webhook"],
      [ADMIN, 200, "Add a webhook"],
      [MEMBER, 403, "Only owners and admins can manage webhooks"],
      [VIEWER, 403, "Only owners and admins can manage webhooks"],
    ])("GET /t/demo/webhooks as %s: %i", async (email, status, text) => {
      const response = await get("/t/demo/webhooks", email);
      expect(response.status).toBe(status);
      const html = await response.text();
      expect(html).toContain(text);
      expect(html.includes("https://siem.example.com/hooks/attest")).toBe(status === 200);
    });

    it("shows the upgrade prompt on a plan without webhooks (before any role check)", async () => {
      for (const email of [BASIC_OWNER, ADMIN]) {
        const response = await get("/t/basic/webhooks", email);
        expect(response.status).toBe(403);
        expect(await response.text()).toContain("Webhooks is not included in the Basic plan");
      }
    });

    it("adds a webhook (webhook.created) and shows its secret once, in that response only", async () => {
      const response = await post("/t/demo/webhooks", ADMIN, {
        url: "https://hooks.example.com/attest",
        description: "Chat alerts",
        actions: "incident.*, export.requested",
      });
      expect(response.status).toBe(201);
      expect(response.headers.get("cache-control")).toBe("no-store");
      const html = await response.text();
      const secret = /id="webhook-secret" type="text" value="([^"]+)"/.exec(html)?.[1] ?? "";
      const { rows } = await t.superuser.query(
        `select w.id, w.description, w.actions, w.created_by, s.secret from app_public.webhooks w
         join app_private.webhook_secrets s on s.webhook_id = w.id where w.url = 'https://hooks.example.com/attest'`,
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({
        description: "Chat alerts",
        actions: ["incident.*", "export.requested"],
        created_by: userIds[ADMIN],
      });
      expect(secret).toBe(rows[0].secret);
      expect(secret.length).toBeGreaterThanOrEqual(32);
      const [entry] = await expectAudited(response, ADMIN, "webhook.created");
      expect(entry.resource_label).toBe("https://hooks.example.com/attest");
      expect(entry.row_text).not.toContain(secret);
      const later = await (await get("/t/demo/webhooks", ADMIN)).text();
      expect(later).toContain("https://hooks.example.com/attest");
      expect(later).not.toContain(secret);
      expect(later).not.toContain('id="webhook-secret"');
      expect(await (await get("/t/demo/webhooks", OWNER)).text()).not.toContain(secret);
    });

    it("shows the database's message and what was typed for a bad URL, actions or description", async () => {
      const cases: Array<[Form, string, string[]]> = [
        [
          { url: "ftp://files.example.com", description: "Typed <desc>", actions: "" },
          "The webhook URL must start with http:// or https:// and be at most 2000 characters.",
          ['value="ftp://files.example.com"', 'value="Typed &lt;desc&gt;"'],
        ],
        [
          { url: "https://ok.example.com", description: "", actions: "incident.created, not an action!" },
          "is not an action. Use names like incident.created",
          ['value="https://ok.example.com"', 'value="incident.created, not an action!"'],
        ],
        [
          { url: "https://ok.example.com", description: "d".repeat(501), actions: "" },
          "The webhook description may be at most 500 characters.",
          [`value="${"d".repeat(501)}"`],
        ],
      ];
      for (const [form, message, typed] of cases) {
        const response = await unchanged(() => post("/t/demo/webhooks", OWNER, form));
        expect(response.status).toBe(400);
        const html = await response.text();
        expect(html).toContain(message);
        for (const value of typed) expect(html).toContain(value);
        expect(html).not.toContain('id="webhook-secret"');
      }
    });

    it("refuses members, viewers and plans without webhooks, adding nothing", async () => {
      for (const [email, path, text] of [
        [MEMBER, "/t/demo/webhooks", "Only owners and admins can manage webhooks"],
        [VIEWER, "/t/demo/webhooks", "Only owners and admins can manage webhooks"],
        [BASIC_OWNER, "/t/basic/webhooks", "Webhooks is not included in the Basic plan"],
      ]) {
        const response = await unchanged(() => post(path, email, { url: "https://refused.example.com" }));
        expect(response.status).toBe(403);
        expect(await response.text()).toContain(text);
      }
    });

    it("deletes a webhook (webhook.deleted); members may not", async () => {
      const id = await asUser(t, ADMIN, "demo", async (c) => {
        const { rows } = await c.query("select id from app_public.create_webhook('https://delete-me.example.com')");
        return rows[0].id as string;
      });
      const member = await unchanged(() => post(`/t/demo/webhooks/${id}/delete`, MEMBER));
      expect(member.status).toBe(403);

      const response = await post(`/t/demo/webhooks/${id}/delete`, OWNER);
      expect(response.status).toBe(302);
      expect(response.headers.get("location")).toBe("/t/demo/webhooks");
      const { rows } = await t.superuser.query("select count(*)::int as n from app_public.webhooks where id = $1", [
        id,
      ]);
      expect(rows[0].n).toBe(0);
      const [entry] = await expectAudited(response, OWNER, "webhook.deleted");
      expect(entry.resource_label).toBe("https://delete-me.example.com");
      const html = await follow(response, OWNER);
      expect(html).toContain("Webhook https://delete-me.example.com deleted.");
      expect(html).not.toContain('<code class="break">https://delete-me.example.com</code>');

      const again = await unchanged(() => post(`/t/demo/webhooks/${id}/delete`, OWNER));
      expect(await follow(again, OWNER)).toContain("That webhook was already deleted.");
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe("Members", () => {
    it.each(Object.entries(DEMO_ROLES))(
      "shows the %s the members, invitations for owners and admins, role controls for the owner only",
      async (role, email) => {
        const response = await get("/t/demo/members", email);
        expect(response.status).toBe(200);
        const html = await response.text();
        for (const member of Object.values(DEMO_ROLES)) expect(html).toContain(member);
        expect(html.includes("Invite someone")).toBe(role === "owner" || role === "admin");
        expect(html.includes('id="invitations-heading"')).toBe(role === "owner" || role === "admin");
        expect(html.includes('id="invite-role"')).toBe(role === "owner" || role === "admin");
        expect(html.includes(`/role"`)).toBe(role === "owner");
        expect(html.includes("Only an owner can change members.")).toBe(role === "member" || role === "viewer");
      },
    );

    it("invites (invitation.created, link shown once); the person joins only by accepting (membership.created); then role change and removal", async () => {
      const basic = (await ids(t)).tenants.basic;
      const membership = async () =>
        (
          await t.superuser.query("select role from app_public.memberships where tenant_id = $1 and user_id = $2", [
            basic,
            userIds[VIEWER],
          ])
        ).rows[0]?.role;

      const invited = await post("/t/basic/members", BASIC_OWNER, {
        email: ` ${VIEWER.toUpperCase()} `,
        role: "member",
      });
      expect(invited.status).toBe(201);
      const html = await invited.text();
      expect(html).toContain(`Invitation for ${VIEWER}`);
      const link = /value="(http:\/\/[^"]+(\/invitations\/inv_[0-9a-f]{48}))"/.exec(html);
      expect(link?.[1].startsWith(web.url)).toBe(true);
      const [created] = await expectAudited(invited, BASIC_OWNER, "invitation.created");
      expect(created.tenant).toBe("basic");
      expect(created.resource_label).toBe(VIEWER);
      expect(await membership()).toBeUndefined();
      // Listed, without the link (shown once).
      const listed = await (await get("/t/basic/members", BASIC_OWNER)).text();
      expect(listed).toContain(`the invitation of ${VIEWER}`);
      expect(listed).not.toContain(link?.[2] ?? "-");

      const accepted = await post(`${link?.[2]}/accept`, VIEWER);
      expect(accepted.status).toBe(302);
      expect(accepted.headers.get("location")).toBe("/t/basic/incidents");
      expect(await membership()).toBe("member");
      const joined = await expectAudited(accepted, VIEWER, "invitation.accepted", "membership.created");
      expect(joined.every((r) => r.tenant === "basic")).toBe(true);
      expect(await follow(accepted, VIEWER)).toContain("You joined Basic Logistics Ltd as a member.");

      const changed = await post(`/t/basic/members/${userIds[VIEWER]}/role`, BASIC_OWNER, { role: "admin" });
      expect(changed.status).toBe(302);
      expect(await membership()).toBe("admin");
      const [updated] = await expectAudited(changed, BASIC_OWNER, "membership.updated");
      expect(updated.changes).toEqual({ role: { old: "member", new: "admin" } });
      expect(await follow(changed, BASIC_OWNER)).toContain(`${VIEWER} is now an admin (was member).`);

      const removed = await post(`/t/basic/members/${userIds[VIEWER]}/remove`, BASIC_OWNER);
      expect(removed.status).toBe(302);
      expect(await membership()).toBeUndefined();
      await expectAudited(removed, BASIC_OWNER, "membership.deleted");
      expect(await follow(removed, BASIC_OWNER)).toContain(`${VIEWER} was removed from Basic Logistics Ltd.`);
    });

    it("revokes a pending invitation (invitation.revoked); its link stops working", async () => {
      const invited = await post("/t/demo/members", ADMIN, { email: "revoke-me@people.test", role: "viewer" });
      expect(invited.status).toBe(201);
      const [{ resource_id: id }] = await expectAudited(invited, ADMIN, "invitation.created");
      const revoked = await post(`/t/demo/members/invitations/${id}/revoke`, ADMIN);
      expect(revoked.status).toBe(302);
      await expectAudited(revoked, ADMIN, "invitation.revoked");
      expect(await follow(revoked, ADMIN)).toContain("The invitation of revoke-me@people.test was revoked");
      const again = await unchanged(() => post(`/t/demo/members/invitations/${id}/revoke`, ADMIN));
      expect(await follow(again, ADMIN)).toContain("No pending invitation with that id in this tenant");
    });

    it("shows the database's message and what was typed for a member already in, a bad role or address, or an owner invited by an admin", async () => {
      const cases: Array<[string, Form, number, string]> = [
        [BASIC_OWNER, { email: ADMIN, role: "member" }, 409, `${ADMIN} is already a member of this tenant`],
        [BASIC_OWNER, { email: MEMBER, role: "superuser" }, 400, "The role must be owner, admin, member or viewer."],
        [BASIC_OWNER, { email: "not-an-address", role: "member" }, 400, "That is not a valid email address."],
        [BASIC_OWNER, { email: "", role: "member" }, 400, "Enter the email address of the person to invite."],
      ];
      for (const [by, form, status, message] of cases) {
        const response = await unchanged(() => post("/t/basic/members", by, form));
        expect(response.status, String(form.email)).toBe(status);
        const html = await response.text();
        expect(html).toContain(message);
        expect(html).toContain(
          `id="invite-email" name="email" type="email" required maxlength="320" value="${form.email}"`,
        );
      }
      const ownerByAdmin = await unchanged(() =>
        post("/t/demo/members", ADMIN, { email: "boss@people.test", role: "owner" }),
      );
      expect(ownerByAdmin.status).toBe(403);
      expect(await ownerByAdmin.text()).toContain("Only an owner can invite another owner");
      const badRole = await unchanged(() =>
        post(`/t/basic/members/${userIds[ADMIN]}/role`, BASIC_OWNER, { role: "boss" }),
      );
      expect(badRole.status).toBe(400);
      expect(await badRole.text()).toContain("Choose one of the roles owner, admin, member or viewer.");
    });

    it("keeps the last owner: demoting or removing them is refused with a message, changing nothing", async () => {
      for (const [email, slug, tenantName] of [
        [BASIC_OWNER, "basic", "Basic Logistics Ltd"],
        [OWNER, "demo", "Demo Energy GmbH"],
      ]) {
        const demote = await unchanged(() =>
          post(`/t/${slug}/members/${userIds[email]}/role`, email, { role: "admin" }),
        );
        expect(demote.status).toBe(400);
        let html = await demote.text();
        expect(html).toContain(`Could not change the role of ${email}: a tenant must keep at least one owner.`);
        expect(html).toContain('class="has-error"');
        const remove = await unchanged(() => post(`/t/${slug}/members/${userIds[email]}/remove`, email));
        expect(remove.status).toBe(400);
        html = await remove.text();
        expect(html).toContain(`Could not remove ${email}: a tenant must keep at least one owner.`);
        expect(html).toContain(tenantName);
      }
    });

    it("refuses role changes and removals to admins, members and viewers, and invitations to members and viewers, changing nothing", async () => {
      for (const email of [ADMIN, MEMBER, VIEWER]) {
        for (const [path, form] of [
          [`/t/demo/members/${userIds[MEMBER]}/role`, { role: "viewer" }],
          [`/t/demo/members/${userIds[VIEWER]}/remove`, {}],
        ] as Array<[string, Form]>) {
          const response = await unchanged(() => post(path, email, form));
          expect(response.status, `${email} ${path}`).toBe(403);
          expect(await response.text()).toContain("Only owners can change members");
        }
      }
      for (const email of [MEMBER, VIEWER]) {
        const response = await unchanged(() =>
          post("/t/demo/members", email, { email: "x@people.test", role: "viewer" }),
        );
        expect(response.status).toBe(403);
        expect(await response.text()).toContain("Only owners and admins can invite people");
      }
    });
  });

  // ---------------------------------------------------------------------------------------------

  describe("API Tokens", () => {
    it.each([
      [OWNER, 200, "Create a token"],
      [ADMIN, 200, "Create a token"],
      [MEMBER, 403, "Only owners and admins can manage API tokens"],
      [VIEWER, 403, "Only owners and admins can manage API tokens"],
    ])("GET /t/demo/tokens as %s: %i", async (email, status, text) => {
      const response = await get("/t/demo/tokens", email);
      expect(response.status).toBe(status);
      const html = await response.text();
      expect(html).toContain(text);
      expect(html.includes("Old SIEM connector")).toBe(status === 200);
    });

    it("creates a token (api_token.created) and shows it once, in that response only; the token works", async () => {
      const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
      const response = await post("/t/demo/tokens", ADMIN, { name: "SIEM pull", expires_on: tomorrow });
      expect(response.status).toBe(201);
      expect(response.headers.get("cache-control")).toBe("no-store");
      const html = await response.text();
      const token = /id="api-token" type="text" value="([^"]+)"/.exec(html)?.[1] ?? "";
      expect(token).toMatch(/^att_[0-9a-f]{48}$/);
      const { rows } = await t.superuser.query(
        `select a.id, a.user_id, a.token_prefix, a.expires_at, encode(s.token_hash, 'hex') as hash
         from app_public.api_tokens a join app_private.api_token_secrets s on s.token_id = a.id where a.name = 'SIEM pull'`,
      );
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ user_id: userIds[ADMIN], token_prefix: token.slice(0, 12), hash: sha256(token) });
      expect((rows[0].expires_at as Date).toISOString()).toBe(
        new Date(Date.parse(`${tomorrow}T00:00:00Z`) + 86_400_000).toISOString(),
      );
      const [entry] = await expectAudited(response, ADMIN, "api_token.created");
      expect(entry.resource_label).toBe("SIEM pull");
      expect(entry.row_text).not.toContain(token);
      expect(entry.row_text).not.toContain(token.slice(12));
      for (const email of [ADMIN, OWNER]) {
        const later = await (await get("/t/demo/tokens", email)).text();
        expect(later).toContain("SIEM pull");
        expect(later).not.toContain(token);
        expect(later).not.toContain('id="api-token"');
      }
      const used = await web.gql<{ currentTenant: { slug: string } }>("{ currentTenant { slug } }", { token });
      expect(used.data?.currentTenant.slug).toBe("demo");
    });

    it("shows the database's message and what was typed for a past expiry, a bad date or a bad name", async () => {
      const cases: Array<[Form, string]> = [
        [{ name: "Expired already", expires_on: "2000-01-01" }, "The expiry must be in the future"],
        [{ name: "Bad date", expires_on: "31/12/2099" }, "Enter the expiry as a date (YYYY-MM-DD)"],
        [{ name: "n".repeat(101), expires_on: "" }, "The token name must be 1 to 100 characters."],
        [{ name: "", expires_on: "" }, "The token name must be 1 to 100 characters."],
      ];
      for (const [form, message] of cases) {
        const response = await unchanged(() => post("/t/demo/tokens", OWNER, form));
        expect(response.status, String(form.name)).toBe(400);
        const html = await response.text();
        expect(html).toContain(message);
        expect(html).toContain(`name="name" type="text" required maxlength="100" value="${form.name}"`);
        expect(html).toContain(`name="expires_on" type="date" min="`);
        expect(html).toContain(`value="${form.expires_on}"`);
        expect(html).not.toContain('id="api-token"');
      }
    });

    it("refuses members and viewers, creating and revoking nothing", async () => {
      const id = (await t.superuser.query("select id from app_public.api_tokens where name = 'Old SIEM connector'"))
        .rows[0].id;
      for (const email of [MEMBER, VIEWER]) {
        for (const [path, form] of [
          ["/t/demo/tokens", { name: "Refused" }],
          [`/t/demo/tokens/${id}/revoke`, {}],
        ] as Array<[string, Form]>) {
          const response = await unchanged(() => post(path, email, form));
          expect(response.status).toBe(403);
          expect(await response.text()).toContain("Only owners and admins can manage API tokens");
        }
      }
    });

    it("revokes a token (api_token.revoked), once", async () => {
      const id = await asUser(t, ADMIN, "demo", async (c) => {
        const { rows } = await c.query("select id from app_public.create_api_token('Revoke me')");
        return rows[0].id as string;
      });
      const response = await post(`/t/demo/tokens/${id}/revoke`, OWNER);
      expect(response.status).toBe(302);
      expect(response.headers.get("location")).toBe("/t/demo/tokens");
      const { rows } = await t.superuser.query("select revoked_at from app_public.api_tokens where id = $1", [id]);
      expect(rows[0].revoked_at).not.toBeNull();
      const [entry] = await expectAudited(response, OWNER, "api_token.revoked");
      expect(entry.resource_label).toBe("Revoke me");
      expect(await follow(response, OWNER)).toContain("API token &quot;Revoke me&quot; revoked.");
      const again = await unchanged(() => post(`/t/demo/tokens/${id}/revoke`, OWNER));
      expect(await follow(again, OWNER)).toContain("That token is already revoked, or no longer exists.");
    });
  });
});
