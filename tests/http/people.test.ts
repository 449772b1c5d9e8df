/**
 * People and their sign-ins, end to end over HTTP, as two tenants' owners and a person invited to
 * both: invitations from the Members page (the link shown once) and over GraphQL, answered from
 * the link page and the home page; the invitee's sign-ins reach a tenant only from the moment
 * they joined it, no tenant's entries name another tenant, the person sees their whole history on
 * /account, and a burst of 100 failed sign-ins is recorded once, as a summary, with no webhook
 * event per attempt.
 */
import { hash } from "@node-rs/argon2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const PAT = "pat@people.test";
const PASSWORD = "pat-password-1";

describe.each(servers())("people and sign-ins on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let demo: string;
  let basic: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
    ({ demo, basic } = (await ids(t)).tenants);
    // Pat has an account (made by an administrator) and no tenant. Basic gets the audit log so
    // that its owner can read it like demo's.
    const { rows } = await t.superuser.query(
      "insert into app_public.users (email, name) values ($1, 'Pat') returning id",
      [PAT],
    );
    await t.superuser.query("insert into app_private.user_secrets (user_id, password_hash) values ($1, $2)", [
      rows[0].id,
      await hash(PASSWORD),
    ]);
    await t.superuser.query("update app_public.tenants set plan_id = 'business' where id = $1", [basic]);
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  const login = (email: string, password: string) =>
    fetch(`${web.url}/login`, {
      method: "POST",
      redirect: "manual",
      headers: {
        "Content-Type": "application/x-www-form-urlencoded",
        Origin: web.url,
        "User-Agent": "people-test",
      },
      body: new URLSearchParams({ email, password }),
    });
  const get = (path: string, cookie?: string) =>
    fetch(`${web.url}${path}`, { redirect: "manual", headers: cookie ? { Cookie: cookie } : {} });
  const post = (path: string, cookie: string, form: Record<string, string>) =>
    fetch(`${web.url}${path}`, {
      method: "POST",
      redirect: "manual",
      headers: { Cookie: cookie, Origin: web.url, "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form),
    });
  const csrfOf = (html: string) => /(?:name="_csrf" value|data-csrf)="([^"]+)"/.exec(html)?.[1] ?? "";
  /** Session entries about Pat in a tenant's log (as its owner would read them), oldest first. */
  const patSessions = async (tenant: string) =>
    (
      await t.superuser.query<{ action: string; changes: Record<string, { new: unknown }> }>(
        "select action, changes from app_public.audit_log where tenant_id = $1 and action like 'session.%' and resource_label = $2 order by id",
        [tenant, PAT],
      )
    ).rows;

  it("an owner invites from the Members page: the link is shown once; the answer is the same with or without an account", async () => {
    const owner = await web.signIn("owner@demo.test");
    const page = await (await get("/t/demo/members", owner)).text();
    expect(page).toContain("Invite someone");
    expect(page).not.toContain("Add member");
    const withAccount = await post("/t/demo/members", owner, { _csrf: csrfOf(page), email: PAT, role: "member" });
    const without = await post("/t/demo/members", owner, {
      _csrf: csrfOf(page),
      email: "nobody-here@people.test",
      role: "member",
    });
    expect(withAccount.status).toBe(201);
    expect(without.status).toBe(201);
    const [a, b] = [await withAccount.text(), await without.text()];
    const link = /value="(http:\/\/[^"]+\/invitations\/inv_[0-9a-f]{48})"/.exec(a)?.[1];
    expect(link).toBeDefined();
    (globalThis as { patLink?: string }).patLink = link;
    expect(/value="(http:\/\/[^"]+\/invitations\/inv_[0-9a-f]{48})"/.test(b)).toBe(true);
    // Apart from the address, its link and the list that grew, the two answers read the same.
    // (The expiry time is left out: the two requests may fall in different minutes.)
    const heading = (html: string) =>
      (/<section class="panel created-invitation"[\s\S]*?<\/section>/.exec(html)?.[0] ?? "").replace(
        /<time [^>]*>[^<]*<\/time>/g,
        "<time>",
      );
    expect(
      heading(b)
        .replaceAll("nobody-here@people.test", PAT)
        .replace(/inv_[0-9a-f]{48}/, ""),
    ).toBe(heading(a).replace(/inv_[0-9a-f]{48}/, ""));
    // Listed as pending with a Revoke button; nobody joined.
    const after = await (await get("/t/demo/members", owner)).text();
    expect(after).toContain('Revoke<span class="visually-hidden"> the invitation of pat@people.test');
    expect(after).not.toContain(link ?? "-");
    const members = await t.superuser.query(
      "select count(*)::int as n from app_public.memberships where tenant_id = $1",
      [demo],
    );
    expect(members.rows[0].n).toBe(4);
  });

  it("members and viewers cannot invite or revoke (403 pages)", async () => {
    const member = await web.signIn("member@demo.test");
    const page = await (await get("/t/demo/members", member)).text();
    expect(page).not.toContain("Invite someone");
    const refused = await post("/t/demo/members", member, {
      _csrf: csrfOf(page),
      email: "x@people.test",
      role: "viewer",
    });
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("Only owners and admins can invite people");
    const [inv] = (
      await t.superuser.query("select id from app_public.invitations where tenant_id = $1 limit 1", [demo])
    ).rows;
    const revoke = await post(`/t/demo/members/invitations/${inv.id}/revoke`, member, { _csrf: csrfOf(page) });
    expect(revoke.status).toBe(403);
  });

  it("Pat signs in before joining anything: only Pat's own history records it", async () => {
    // Three failed attempts first, then the right password.
    for (let i = 0; i < 3; i++) expect((await login(PAT, `wrong-${i}`)).status).toBe(401);
    const response = await login(PAT, PASSWORD);
    expect(response.status).toBe(302);
    expect(await patSessions(demo)).toEqual([]);
    expect(await patSessions(basic)).toEqual([]);
    const history = await t.superuser.query(
      "select kind, attempts from app_private.sign_in_history h join app_public.users u on u.id = h.user_id where u.email = $1 order by h.id",
      [PAT],
    );
    expect(history.rows).toEqual([
      { kind: "sign_in_failed", attempts: 3 },
      { kind: "signed_in", attempts: null },
    ]);
  });

  it("the link page asks strangers to sign in, refuses someone else, and lets Pat accept", async () => {
    const link = (globalThis as { patLink?: string }).patLink ?? "";
    const path = new URL(link).pathname;
    const anonymous = await get(path);
    expect(anonymous.status).toBe(200);
    const anonymousHtml = await anonymous.text();
    expect(anonymousHtml).toContain("Sign in with the email address this invitation was sent to");
    expect(anonymousHtml).toContain("ask them (or whoever");
    expect(anonymousHtml).not.toContain("Demo Energy"); // nothing about the tenant before signing in

    const someoneElse = await web.signIn("viewer@demo.test");
    const refused = await get(path, someoneElse);
    expect(refused.status).toBe(404);
    expect(await refused.text()).toContain(
      "There is no invitation for <strong>viewer@demo.test</strong> with this link",
    );

    const pat = await web.signIn(PAT, PASSWORD);
    const open = await get(path, pat);
    expect(open.status).toBe(200);
    const openHtml = await open.text();
    expect(openHtml).toContain("Join Demo Energy GmbH?");
    const accepted = await post(`${path}/accept`, pat, { _csrf: csrfOf(openHtml) });
    expect(accepted.status).toBe(302);
    expect(accepted.headers.get("location")).toBe("/t/demo/incidents");
    const incidents = await get("/t/demo/incidents", `${pat}; ${accepted.headers.getSetCookie()[0].split(";")[0]}`);
    expect(await incidents.text()).toContain("You joined Demo Energy GmbH as a member.");
    // Single use.
    const again = await post(`${path}/accept`, pat, { _csrf: csrfOf(openHtml) });
    expect(again.status).toBe(404);
    expect(await again.text()).toContain("There is no invitation for pat@people.test with that link");
    // Demo saw none of Pat's sign-ins from before (nor the burst of failures that began before).
    expect(await patSessions(demo)).toEqual([]);
  });

  it("GraphQL: the basic owner invites; Pat sees it on the home page and over GraphQL, and accepts from home", async () => {
    const basicOwner = await web.signIn("owner@basic.test");
    const invited = await web.gql<{ inviteMember: { result: { rowId: string; token: string; email: string } } }>(
      `mutation { inviteMember(input: { email: "${PAT}", role: "viewer" }) { result { rowId email token } } }`,
      { cookie: basicOwner },
    );
    expect(invited.errors).toBeUndefined();
    expect(invited.data?.inviteMember.result.email).toBe(PAT);
    const listed = await web.gql<{
      currentTenant: { invitations: { nodes: Array<{ email: string; isOpen: boolean }> } };
    }>("{ currentTenant { invitations { nodes { email isOpen } } } }", { cookie: basicOwner });
    expect(listed.data?.currentTenant.invitations.nodes).toEqual(
      expect.arrayContaining([{ email: PAT, isOpen: true }]),
    );

    const pat = await web.signIn(PAT, PASSWORD);
    const mine = await web.gql<{
      myInvitations: { nodes: Array<{ tenantName: string; role: string; invitedByEmail: string }> };
    }>("{ myInvitations { nodes { tenantName role invitedByEmail } } }", { cookie: pat });
    expect(mine.data?.myInvitations.nodes).toEqual([
      { tenantName: "Basic Logistics Ltd", role: "viewer", invitedByEmail: "owner@basic.test" },
    ]);
    // Home lists it (Pat has one tenant, but something to answer: no redirect).
    const home = await get("/", pat);
    expect(home.status).toBe(200);
    const homeHtml = await home.text();
    expect(homeHtml).toContain("Invitations for you");
    expect(homeHtml).toContain("Basic Logistics Ltd");
    const id = invited.data?.inviteMember.result.rowId;
    const accepted = await post(`/invitations/${id}/accept`, pat, { _csrf: csrfOf(homeHtml) });
    expect(accepted.status).toBe(302);
    expect(accepted.headers.get("location")).toBe("/t/basic/incidents");
    expect(await patSessions(basic)).toEqual([]);
  });

  it("from now on each tenant records Pat's sign-ins; no tenant's entries name the other", async () => {
    const cookie = await web.signIn(PAT, PASSWORD);
    await fetch(`${web.url}/logout`, {
      method: "POST",
      redirect: "manual",
      headers: { Cookie: cookie, Origin: web.url },
    });
    // Demo also has the sign-in of the previous step (Pat was a member of demo by then); basic
    // has nothing from before Pat joined it.
    expect((await patSessions(demo)).map((e) => e.action)).toEqual([
      "session.signed_in",
      "session.signed_in",
      "session.signed_out",
    ]);
    expect((await patSessions(basic)).map((e) => e.action)).toEqual(["session.signed_in", "session.signed_out"]);
    const names = await t.superuser.query<{ id: string; slug: string; name: string }>(
      "select id, slug, name from app_public.tenants where id in ($1, $2)",
      [demo, basic],
    );
    const of = (id: string) => names.rows.find((r) => r.id === id);
    for (const [mine, other] of [
      [demo, basic],
      [basic, demo],
    ]) {
      const dump = await t.superuser.query<{ text: string }>(
        "select coalesce(string_agg(row_to_json(e)::text, ' '), '') as text from app_public.audit_log e where e.tenant_id = $1 and (e.resource_label = $2 or e.actor_label = $2)",
        [mine, PAT],
      );
      for (const secret of [of(other)?.id, of(other)?.slug, of(other)?.name]) {
        expect(dump.rows[0].text).not.toContain(`"${secret}"`);
        expect(dump.rows[0].text).not.toContain(secret);
      }
    }
    // Each owner, through the API, sees Pat's sign-ins since Pat joined, in their own tenant only.
    for (const [owner, slug, expected] of [
      ["owner@demo.test", "demo", ["session.signed_out", "session.signed_in", "session.signed_in"]],
      ["owner@basic.test", "basic", ["session.signed_out", "session.signed_in"]],
    ] as const) {
      const ownerCookie = await web.signIn(owner);
      const seen = await web.gql<{ auditLogs: { nodes: Array<{ action: string }> } }>(
        `{ auditLogs(condition: { actionPrefix: "session.", actorLabel: "${PAT}" }) { nodes { action } } }`,
        { cookie: ownerCookie, tenant: slug },
      );
      expect(seen.errors).toBeUndefined();
      expect(seen.data?.auditLogs.nodes.map((n) => n.action)).toEqual(expected);
    }
  });

  it("a burst of 100 failed sign-ins is recorded once, with its count, and sends no event per attempt", async () => {
    // A webhook on demo that wants every session event.
    await t.superuser.query(
      "insert into app_public.webhooks (tenant_id, url, actions) values ($1, 'https://siem.example.com/people', '{session.*}')",
      [demo],
    );
    const deliveries = async () =>
      (
        await t.superuser.query<{ n: number }>(
          "select count(*)::int as n from app_private.webhook_deliveries where action = 'session.sign_in_failed'",
        )
      ).rows[0].n;
    await t.superuser.query("delete from app_private.sign_in_failures");
    const before = { demo: await patSessions(demo), basic: await patSessions(basic) };
    const statuses = new Map<number, number>();
    for (let i = 0; i < 100; i++) {
      const { status } = await login(PAT, `guess-${i}`);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
    expect(Object.fromEntries(statuses)).toEqual({ 401: 10, 429: 90 });
    // Nothing recorded, nothing queued while the burst lasts.
    expect(await patSessions(demo)).toEqual(before.demo);
    expect(await patSessions(basic)).toEqual(before.basic);
    expect(await deliveries()).toBe(0);
    const burst = await t.superuser.query(
      "select attempts from app_private.sign_in_bursts b join app_public.users u on u.id = b.user_id where u.email = $1",
      [PAT],
    );
    expect(burst.rows).toEqual([{ attempts: 100 }]);

    // Fifteen minutes later the worker's sweep records it: one summary per tenant.
    // (Time travel: the burst and Pat's memberships, which began before it, move 15 minutes back;
    // replica mode keeps the test's own change out of the log.)
    const travel = await t.superuser.connect();
    try {
      await travel.query("begin");
      await travel.query("set local session_replication_role = replica");
      await travel.query("update app_private.sign_in_bursts set first_at = first_at - interval '15 minutes'");
      await travel.query(
        "update app_public.memberships set created_at = created_at - interval '15 minutes' where user_id = (select id from app_public.users where email = $1)",
        [PAT],
      );
      await travel.query("commit");
    } finally {
      travel.release();
    }
    const { rows } = await t.pools.owner.query<{ n: number }>("select app_private.close_ended_sign_in_bursts() as n");
    expect(rows[0].n).toBe(1);
    for (const tenant of [demo, basic]) {
      const added = (await patSessions(tenant)).slice((tenant === demo ? before.demo : before.basic).length);
      expect(added.map((e) => e.action)).toEqual(["session.sign_in_failed"]);
      expect(added[0].changes.attempts).toEqual({ new: 100 });
      expect(added[0].changes.first_attempt_at.new).toEqual(expect.any(String));
      expect(added[0].changes.last_attempt_at.new).toEqual(expect.any(String));
    }
    expect(await deliveries()).toBe(1);
    const entry = await t.superuser.query(
      "select host(ip) as ip, user_agent, actor_label from app_public.audit_log where tenant_id = $1 and action = 'session.sign_in_failed' order by id desc limit 1",
      [demo],
    );
    // The last attempt's address and browser, recorded as the system (not Pat's own act).
    expect(entry.rows[0]).toEqual({
      ip: expect.stringMatching(/127\.0\.0\.1/),
      user_agent: "people-test",
      actor_label: "system",
    });
  });

  it("Pat sees the whole history on /account, including the bursts with their counts", async () => {
    await t.superuser.query("delete from app_private.sign_in_failures");
    const pat = await web.signIn(PAT, PASSWORD);
    const html = await (await get("/account", pat)).text();
    expect(html).toContain("Your sign-in history");
    expect(html).toContain("<strong>100</strong> attempts");
    expect(html).toContain("<strong>3</strong> attempts");
    expect((html.match(/>Signed in</g) ?? []).length).toBeGreaterThanOrEqual(4);
    const viaApi = await web.gql<{ mySignIns: { nodes: Array<{ kind: string; attempts: number | null }> } }>(
      "{ mySignIns(first: 3) { nodes { kind attempts } } }",
      { cookie: pat, tenant: "demo" },
    );
    expect(viaApi.data?.mySignIns.nodes).toEqual([
      { kind: "signed_in", attempts: null },
      { kind: "sign_in_failed", attempts: 100 },
      { kind: "signed_out", attempts: null },
    ]);
    // Nobody else's: the demo owner's history has none of Pat's.
    const owner = await web.signIn("owner@demo.test");
    const ownerHtml = await (await get("/account", owner)).text();
    expect(ownerHtml).not.toContain("<strong>100</strong>");
  });
});
