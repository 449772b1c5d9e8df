/**
 * The Audit Log page, server side: who gets which page (log, 403, upgrade prompt, sign-in),
 * filters and paging from the URL without JavaScript, htmx fragments, and escaping.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withContext } from "../../src/db/context.ts";
import { csrfToken } from "../../src/http/csrf.ts";
import { createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { runJobsOnce } from "../helpers/worker.ts";

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
    // A fragment the page polls, after the session ended: back to the page it was polled from.
    const polled = await get("/t/demo/audit/chain", undefined, {
      "HX-Request": "true",
      "HX-Current-URL": `${web.url}/t/demo/audit?q=incident`,
    });
    expect(polled.status).toBe(401);
    expect(polled.headers.get("hx-location")).toBe(`/login?next=${encodeURIComponent("/t/demo/audit?q=incident")}`);
    // (a page of another site is no way back)
    const foreign = await get("/t/demo/audit/chain", undefined, {
      "HX-Request": "true",
      "HX-Current-URL": "https://elsewhere.example/t/demo/audit",
    });
    expect(foreign.headers.get("hx-location")).toBe(`/login?next=${encodeURIComponent("/t/demo/audit/chain")}`);
  });

  it("shows the owner 25 entries newest first with the four columns", async () => {
    const response = await get("/t/demo/audit", owner);
    expect(response.status).toBe(200);
    const html = await response.text();
    for (const column of ["Timestamp", "User", "Action", "Resource"])
      expect(html).toContain(`role="columnheader">${column}<`);
    expect(rows(html)).toBe(25);
    // Each row says its position (its details come when it is opened).
    const seqs = [...html.matchAll(/Entry #(\d+) · sealed/g)].map((m) => Number(m[1]));
    const { rows: sealed } = await t.superuser.query(
      "select max(seq)::int as n from app_hidden.audit_leaves where tenant_id = $1",
      [demo],
    );
    expect(seqs[0]).toBe(sealed[0].n); // newest sealed first; entries still being sealed show as pending
    expect(seqs).toEqual([...seqs].sort((a, b) => b - a));
    expect(html).toContain(`<strong>${await total()} entries</strong> <span class="muted">in the log</span>`);
    expect(html).toMatch(/<svg[^>]*role="img"/);
  });

  it("filters by the URL without JavaScript: search, action and dates", async () => {
    const search = await (await get("/t/demo/audit?q=RANSOMWARE", owner)).text();
    // The words in the entry, or the entry belongs to an incident titled so now (renamed since).
    const expected = await total(
      `(action || ' ' || actor_label || ' ' || coalesce(resource_label, '')) ilike '%ransomware%'
       or incident_id in (select id from app_public.incidents where tenant_id = $1 and title ilike '%ransomware%')`,
    );
    expect(search).toContain(`<strong>${expected} ${expected === 1 ? "entry" : "entries"}</strong>`);
    expect(search).toContain('value="RANSOMWARE"');
    const byUser = await (await get("/t/demo/audit?q=member%40demo.test", owner)).text();
    const userCount = await total("actor_label = 'member@demo.test' or resource_label ilike '%member@demo.test%'");
    expect(byUser).toContain(`<strong>${userCount} ${userCount === 1 ? "entry" : "entries"}</strong>`);
    const byAction = await (await get("/t/demo/audit?action=evidence.uploaded", owner)).text();
    const uploads = await total("action = 'evidence.uploaded'");
    expect(byAction).toContain(`<strong>${uploads} ${uploads === 1 ? "entry" : "entries"}</strong>`);
    const today = new Date().toISOString().slice(0, 10);
    const range = await (await get(`/t/demo/audit?from=2000-01-01&to=2000-01-31`, owner)).text();
    expect(range).toContain("No entries match these filters.");
    expect(range).toContain('href="/t/demo/audit"'); // clear the filters
    const todayOnly = await (await get(`/t/demo/audit?from=${today}&to=${today}`, owner)).text();
    const todays = await total("occurred_at >= $2::date", today);
    expect(todayOnly).toContain(`<strong>${todays} ${todays === 1 ? "entry" : "entries"}</strong>`);
  });

  it("pages 25 at a time by position (newest, newer, older, oldest), keeping the filters in the links", async () => {
    const matching = (
      await t.superuser.query(
        `select id::text from app_public.audit_log where tenant_id = $1
           and (action || ' ' || actor_label || ' ' || coalesce(resource_label, '')) ilike '%incident%'
         order by occurred_at desc, id desc`,
        [demo],
      )
    ).rows.map((r) => r.id as string);
    expect(matching.length).toBeGreaterThan(50);
    const idsOf = (html: string) => [...html.matchAll(/data-entry="(\d+)"/g)].map((m) => m[1]);
    const link = (html: string, label: string) => {
      const m = new RegExp(`<a href="([^"]+)"[^>]*>${label}</a>`).exec(html);
      return m ? m[1].replaceAll("&amp;", "&") : null;
    };
    const first = await (await get("/t/demo/audit?q=incident", owner)).text();
    expect(idsOf(first)).toEqual(matching.slice(0, 25));
    expect(link(first, "← Newer")).toBeNull();
    const older = link(first, "Older →") as string;
    expect(older).toMatch(/^\/t\/demo\/audit\?q=incident&before=\d+\.\d+$/);
    const second = await (await get(older, owner)).text();
    expect(idsOf(second)).toEqual(matching.slice(25, 50));
    const back = await (await get(link(second, "← Newer") as string, owner)).text();
    expect(idsOf(back)).toEqual(matching.slice(0, 25));
    const oldest = await (await get(link(first, "Oldest »") as string, owner)).text();
    const tail = matching.slice(-25);
    expect(idsOf(oldest)).toEqual(tail);
    expect(link(oldest, "Older →")).toBeNull();
    // A date: the newest entries of that day and before; a day before the log began shows none.
    const today = new Date().toISOString().slice(0, 10);
    const atToday = await (await get(`/t/demo/audit?q=incident&at=${today}`, owner)).text();
    expect(idsOf(atToday)).toEqual(matching.slice(0, 25));
    const atPast = await (await get("/t/demo/audit?q=incident&at=2001-01-01", owner)).text();
    expect(idsOf(atPast)).toEqual([]);
    // Broken or old-style positions show the newest page instead of failing.
    for (const junk of ["page=9999", "before=abc", "after=1.2.3", "at=2023-02-30"]) {
      const response = await get(`/t/demo/audit?q=incident&${junk}`, owner);
      expect(response.status).toBe(200);
      expect(idsOf(await response.text())).toEqual(matching.slice(0, 25));
    }
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
    // (names may wrap after their marks: soft breaks between escaped pieces, render.ts breakable)
    expect(html).toContain("&lt;script&gt;alert(1)&lt;/<wbr>script&gt;");
    expect(html.replaceAll("<wbr>", "")).not.toMatch(/<script>alert|<\/script> "quoted"/);
    const csp = (await get("/t/demo/audit", owner)).headers.get("content-security-policy") ?? "";
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
  });

  it("verifies the chain on demand in the worker, records the result and shows it; a tampered chain shows as broken", async () => {
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
    const jobs = async () =>
      (
        await t.superuser.query<{ n: number }>(
          "select count(*)::int as n from graphile_worker.jobs where task_identifier = 'verify_audit_chain' and attempts < max_attempts",
        )
      ).rows[0].n;
    const work = () => runJobsOnce(t.pools.owner);
    // The request only asks: two clicks before the worker runs make one job, nothing recorded yet.
    const started = await verify();
    expect(started.status).toBe(302);
    expect(await (await get("/t/demo/audit", withFlash(started))).text()).toContain("Verification started");
    expect((await verify()).status).toBe(302);
    expect(await jobs()).toBe(1);
    // While it waits the status line says so, and polls its own fragment until the result is in.
    const waiting = await (await get("/t/demo/audit", owner)).text();
    expect(waiting).toContain("Verifying the log…");
    expect(waiting).toContain('hx-get="/t/demo/audit/chain" hx-trigger="every 2s"');
    expect(waiting).not.toContain("has not been verified yet");
    const polled = await get("/t/demo/audit/chain", owner, { "HX-Request": "true" });
    expect(polled.status).toBe(200);
    const fragment = await polled.text();
    expect(fragment).toMatch(/^\s*<div id="chain-status" class="chain-status running"/);
    expect(fragment).toContain('<button type="submit" class="small" disabled>Verifying…</button>');
    await work();
    expect(await jobs()).toBe(0);
    const done = await (await get("/t/demo/audit/chain", owner, { "HX-Request": "true" })).text();
    expect(done).toMatch(/Log intact<\/strong> — [\d,]+ sealed entries verified/);
    expect(done).not.toContain("hx-trigger");
    const after = await (await get("/t/demo/audit", owner)).text();
    expect(after).toMatch(/Log intact<\/strong> — [\d,]+ sealed entries verified/);
    // A superuser rewrites an entry behind the triggers' back: the next check says where.
    await t.superuser.query(
      "set session_replication_role = replica; update app_public.audit_log e set resource_label = 'rewritten' from app_hidden.audit_leaves l where l.tenant_id = $1 and l.seq = 5 and e.tenant_id = l.tenant_id and e.id = l.entry_id; set session_replication_role = origin;".replace(
        "$1",
        `'${demo}'`,
      ),
    );
    await verify();
    await work();
    const broken = await (await get("/t/demo/audit", owner)).text();
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
    // A verification that failed on every attempt says so, and Verify now asks for it anew.
    await verify();
    await t.superuser.query(
      "update graphile_worker._private_jobs set attempts = max_attempts, last_error = 'the database went away' where key like 'verify_audit_chain:%'",
    );
    const failed = await (await get("/t/demo/audit", owner)).text();
    expect(failed).toContain('class="chain-status failed"');
    expect(failed).toContain("The last verification could not be completed");
    expect(failed).toContain("the latest recorded result: damaged");
    expect(failed).not.toContain("the database went away"); // (the server's log has it, not the page)
    await verify(); // (graphile-worker keeps the failed job, without its key, and queues a new one)
    expect(await (await get("/t/demo/audit", owner)).text()).toContain("Verifying the log…");
    await work();
    expect(await jobs()).toBe(0);
    expect(await (await get("/t/demo/audit", owner)).text()).toContain('class="chain-status broken"');
    const memberPoll = await get("/t/demo/audit/chain", await web.signIn("member@demo.test"), { "HX-Request": "true" });
    expect(memberPoll.status).toBe(403);
    // Opened as a page (a link, or the way back after signing in): the Audit Log page it belongs to.
    const opened = await get("/t/demo/audit/chain", owner);
    expect(opened.status).toBe(302);
    expect(opened.headers.get("location")).toBe("/t/demo/audit");
  });

  it("names the incident a view is narrowed to (All entries of this incident), ticked, to be unticked", async () => {
    const incident = await t.superuser
      .query<{ id: string; title: string }>(
        "select id, title from app_public.incidents where tenant_id = $1 and deleted_at is null order by created_at limit 1",
        [demo],
      )
      .then((r) => r.rows[0]);
    const asHtml = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    const html = await (await get(`/t/demo/audit?incident=${incident.id}&q=a`, owner)).text();
    // The form sends the incident with the other filters while the box is ticked, and not once it is not.
    expect(html).toContain(
      `<input type="checkbox" name="incident" value="${incident.id}" checked class="filter-change">`,
    );
    expect(html).toContain("Only the entries of the incident");
    expect(html).toContain(`<a href="/t/demo/incidents/${incident.id}">${asHtml(incident.title)}</a>`);
    // Unticked (the form sent without it): every incident's entries, the other filters kept.
    const all = await (await get("/t/demo/audit?q=a", owner)).text();
    expect(all).not.toContain('id="incident-filter"');

    // A deleted incident is named as such; an id that is no incident of the tenant says so.
    const deleted = await t.superuser
      .query<{ id: string; title: string }>(
        "select id, title from app_public.incidents where tenant_id = $1 and deleted_at is not null limit 1",
        [demo],
      )
      .then((r) => r.rows[0]);
    expect(deleted?.id).toBeTruthy(); // the demo seed deletes one
    const gone = await (await get(`/t/demo/audit?incident=${deleted.id}`, owner)).text();
    expect(gone).toContain(`${asHtml(deleted.title)}</a> <span class="muted small">(deleted)</span>`);
    const basicIncident = await t.superuser
      .query<{ id: string }>(
        "select i.id from app_public.incidents i join app_public.tenants t on t.id = i.tenant_id where t.slug <> 'demo' limit 1",
      )
      .then((r) => r.rows[0]?.id ?? "00000000-0000-4000-8000-000000000000");
    const elsewhere = await get(`/t/demo/audit?incident=${basicIncident}`, owner);
    expect(elsewhere.status).toBe(200);
    const text = await elsewhere.text();
    expect(text).toContain("(no such incident in this workspace)");
    expect(text).toContain("0 entries");
  });

  it("shows details of an entry when its row is opened: changed fields, request id, IP, user agent, surface, role, log position", async () => {
    const html = await (await get("/t/demo/audit?action=incident.updated", owner)).text();
    // The list carries the rows; each row fetches its details (htmx) when first opened.
    const row = html.match(
      /<details class="log-entry"[^>]* data-entry="(\d+)" hx-get="([^"]+)" hx-trigger="toggle once"/,
    );
    expect(row?.[2]).toBe(`/t/demo/audit/e/${row?.[1]}/detail`);
    expect(html).not.toContain("<dt>Request id</dt>");
    const path = (row?.[2] ?? "").replaceAll("&amp;", "&");
    const res = await fetch(`${web.url}${path}`, { headers: { Cookie: owner, "HX-Request": "true" } });
    expect(res.status).toBe(200);
    const detail = await res.text();
    expect(detail).not.toContain("<html");
    expect(detail).toMatch(/class="old[ "]/);
    expect(detail).toMatch(/class="new[ "]/);
    for (const label of ["Request id", "IP", "User agent", "Surface", "Database role", "Log position"]) {
      expect(detail).toContain(`<dt>${label}</dt>`);
    }
    expect(detail).toMatch(/<a href="\/t\/demo\/audit\?incident=[0-9a-f-]{36}">All entries of this incident<\/a>/);
    expect(detail).toContain("leaf hash <code");

    // An entry not sealed yet: the row says so, and its details come all the same.
    await t.superuser.query(
      "update app_public.incidents set severity = 'critical' where id = (select id from app_public.incidents where tenant_id = $1 and deleted_at is null and severity <> 'critical' order by id limit 1)",
      [demo],
    );
    const fresh = await (await get("/t/demo/audit?action=incident.updated", owner)).text();
    const newest = fresh.match(
      /<details class="log-entry"[^>]* hx-get="([^"]+)"[\s\S]*?<p class="small muted detail-loading">([\s\S]*?)<\/p>/,
    );
    expect(newest?.[2]).toContain('Entry <span class="pending">pending</span>');
    const pending = await (
      await fetch(`${web.url}${newest?.[1]}`, { headers: { Cookie: owner, "HX-Request": "true" } })
    ).text();
    expect(pending).toMatch(/Severity/);
    expect(pending).toContain('<span class="pending">pending</span>');

    // Without htmx (a link followed by hand), the address leads to the entry's own page.
    const plain = await fetch(`${web.url}${path}`, { headers: { Cookie: owner }, redirect: "manual" });
    expect(plain.status).toBe(302);
    expect(plain.headers.get("location")).toMatch(/^\/t\/demo\/audit\/\d+$/);
    // Not a number, no such entry, or not a manager: a message, never a 500.
    const member = await web.signIn("member@demo.test");
    for (const [p, who, status] of [
      ["/t/demo/audit/e/99999999/detail", owner, 404],
      ["/t/demo/audit/e/0/detail", owner, 404],
      ["/t/demo/audit/e/abc/detail", owner, 404],
      [path, member, 403],
    ] as const) {
      const r = await fetch(`${web.url}${p}`, { headers: { Cookie: who, "HX-Request": "true" } });
      expect(r.status, p).toBe(status);
    }
  });
});
