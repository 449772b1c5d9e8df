/**
 * Every GraphQL mutation, made over HTTP by a signed-in user (session cookie) or an API token,
 * leaves exactly one audit entry in its tenant, naming the acting user, the request's
 * X-Request-Id, the graphql surface and the visitor role. A failed mutation leaves none.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, ids, servers, sessionFor, type TestDatabase } from "../helpers/db.ts";
import { type GqlResult, startTestServer, type TestServer } from "../helpers/server.ts";

interface Entry {
  id: string;
  action: string;
  actor_label: string;
  actor_user_id: string | null;
  db_role: string;
  resource_type: string;
  resource_id: string | null;
  resource_label: string | null;
  incident_id: string | null;
  changes: Record<string, { old?: unknown; new?: unknown }>;
  request_id: string | null;
  surface: string;
  /** The whole row as JSON text (to check that no secret leaked into it). */
  row_text: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

const OWNER = "owner@demo.test";
const ADMIN = "admin@demo.test";
const MEMBER = "member@demo.test";

describe.each(servers())("GraphQL mutations over HTTP on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let demo: string;
  let userIds: Record<string, string>;
  const cookies: Record<string, string> = {};

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
    const known = await ids(t);
    demo = known.tenants.demo;
    userIds = known.users;
    // Signing in records session.signed_in entries, so it happens before any measurement.
    for (const email of [OWNER, ADMIN, MEMBER]) cookies[email] = await web.signIn(email);
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  /** Cookie options for a GraphQL request by `email` in tenant demo (admin belongs to two tenants). */
  const as = (email: string) => ({ cookie: cookies[email], tenant: "demo" });

  async function lastId(): Promise<number> {
    const { rows } = await t.superuser.query(
      "select coalesce(max(id), 0)::int as n from app_public.audit_log where tenant_id = $1",
      [demo],
    );
    return rows[0].n;
  }

  /** Runs one GraphQL request and returns it with the audit entries it produced in tenant demo. */
  async function audited<T>(request: () => Promise<GqlResult<T>>): Promise<{ result: GqlResult<T>; entries: Entry[] }> {
    const before = await lastId();
    const result = await request();
    const { rows } = await t.superuser.query<Entry>(
      `select id, action, actor_label, actor_user_id, db_role, resource_type, resource_id, resource_label,
              incident_id, changes, request_id, surface, to_jsonb(a)::text as row_text
       from app_public.audit_log a where tenant_id = $1 and id > $2 order by id`,
      [demo, before],
    );
    return { result, entries: rows };
  }

  function expectSucceeded<T>(result: GqlResult<T>): T {
    expect(result.errors, JSON.stringify(result.errors)).toBeUndefined();
    expect(result.status).toBe(200);
    expect(result.requestId).toMatch(UUID);
    expect(result.data).toBeTruthy();
    return result.data as T;
  }

  /** The request succeeded and left exactly one entry with `action`, by `actor`, from this request. */
  function expectOneEntry<T>(audit: { result: GqlResult<T>; entries: Entry[] }, action: string, actor: string): Entry {
    expectSucceeded(audit.result);
    expect(audit.entries.map((e) => e.action)).toEqual([action]);
    const [entry] = audit.entries;
    expect(entry).toMatchObject({
      action,
      actor_label: actor,
      actor_user_id: userIds[actor],
      request_id: audit.result.requestId,
      surface: "graphql",
      db_role: t.db.roles.visitor,
    });
    return entry;
  }

  // Setup helpers (not measured).

  async function newIncident(title: string, email = MEMBER): Promise<string> {
    const result = await web.gql<{ createIncident: { incident: { rowId: string } } }>(
      `mutation ($title: String!) { createIncident(input: { incident: { title: $title } }) { incident { rowId } } }`,
      { ...as(email), variables: { title } },
    );
    return expectSucceeded(result).createIncident.incident.rowId;
  }

  async function enableNis2(incidentId: string): Promise<void> {
    const result = await web.gql(
      `mutation ($id: UUID!) { updateIncidentByRowId(input: { rowId: $id, patch: { nis2Enabled: true } }) { incident { rowId } } }`,
      { ...as(OWNER), variables: { id: incidentId } },
    );
    expectSucceeded(result);
  }

  async function newWebhook(url: string): Promise<string> {
    const result = await web.gql<{ createWebhook: { result: { rowId: string } } }>(
      `mutation ($url: String!) { createWebhook(input: { url: $url }) { result { rowId } } }`,
      { ...as(ADMIN), variables: { url } },
    );
    return expectSucceeded(result).createWebhook.result.rowId;
  }

  /** A new user (created directly, as users are global) invited to demo by its owner, who accepts. */
  async function newMember(email: string, role = "member"): Promise<string> {
    const { rows } = await t.superuser.query<{ id: string }>(
      "insert into app_public.users (email, name) values ($1, 'New Hire') returning id",
      [email],
    );
    userIds[email] = rows[0].id;
    const invited = await web.gql<{ inviteMember: { result: { rowId: string } } }>(
      `mutation ($email: String!, $role: String!) { inviteMember(input: { email: $email, role: $role }) { result { rowId } } }`,
      { ...as(OWNER), variables: { email, role } },
    );
    const id = expectSucceeded(invited).inviteMember.result.rowId;
    const cookie = `attest_session=${await sessionFor(t, email)}`;
    expectSucceeded(
      await web.gql("mutation ($id: UUID!) { acceptInvitation(input: { id: $id }) { result { state } } }", {
        cookie,
        variables: { id },
      }),
    );
    return rows[0].id;
  }

  async function newToken(name: string): Promise<{ rowId: string; token: string }> {
    const result = await web.gql<{ createApiToken: { result: { rowId: string; token: string } } }>(
      `mutation ($name: String!) { createApiToken(input: { name: $name }) { result { rowId token } } }`,
      { ...as(ADMIN), variables: { name } },
    );
    return expectSucceeded(result).createApiToken.result;
  }

  // Incidents.

  it("createIncident records incident.created", async () => {
    const audit = await audited(() =>
      web.gql<{ createIncident: { incident: { rowId: string; title: string; severity: string } } }>(
        `mutation ($title: String!) {
           createIncident(input: { incident: { title: $title, severity: "high" } }) { incident { rowId title severity } }
         }`,
        { ...as(MEMBER), variables: { title: "Ransomware on file server" } },
      ),
    );
    const entry = expectOneEntry(audit, "incident.created", MEMBER);
    const incident = audit.result.data?.createIncident.incident;
    expect(incident).toMatchObject({ title: "Ransomware on file server", severity: "high" });
    expect(entry).toMatchObject({
      resource_type: "incident",
      resource_id: incident?.rowId,
      incident_id: incident?.rowId,
      resource_label: "Ransomware on file server",
    });
    expect(entry.changes.title).toEqual({ new: "Ransomware on file server" });
  });

  it("updateIncidentByRowId (title) records incident.updated", async () => {
    const id = await newIncident("Suspicious login");
    const audit = await audited(() =>
      web.gql<{ updateIncidentByRowId: { incident: { title: string } } }>(
        `mutation ($id: UUID!) {
           updateIncidentByRowId(input: { rowId: $id, patch: { title: "Credential stuffing" } }) { incident { title } }
         }`,
        { ...as(MEMBER), variables: { id } },
      ),
    );
    const entry = expectOneEntry(audit, "incident.updated", MEMBER);
    expect(audit.result.data?.updateIncidentByRowId.incident.title).toBe("Credential stuffing");
    expect(entry).toMatchObject({ incident_id: id, resource_label: "Credential stuffing" });
    expect(entry.changes).toEqual({ title: { old: "Suspicious login", new: "Credential stuffing" } });
  });

  it("deleteIncident records incident.deleted", async () => {
    const id = await newIncident("Lost laptop");
    const audit = await audited(() =>
      web.gql<{ deleteIncident: { result: { rowId: string; deletedAt: string | null } } }>(
        `mutation ($id: UUID!) { deleteIncident(input: { id: $id }) { result { rowId deletedAt } } }`,
        { ...as(MEMBER), variables: { id } },
      ),
    );
    const entry = expectOneEntry(audit, "incident.deleted", MEMBER);
    expect(audit.result.data?.deleteIncident.result.deletedAt).toBeTruthy();
    expect(entry).toMatchObject({ incident_id: id, resource_label: "Lost laptop" });
  });

  it("restoreIncident records incident.restored", async () => {
    const id = await newIncident("Deleted by mistake");
    expectSucceeded(
      await web.gql(`mutation ($id: UUID!) { deleteIncident(input: { id: $id }) { result { rowId } } }`, {
        ...as(MEMBER),
        variables: { id },
      }),
    );
    const audit = await audited(() =>
      web.gql<{ restoreIncident: { result: { rowId: string; deletedAt: string | null } } }>(
        `mutation ($id: UUID!) { restoreIncident(input: { id: $id }) { result { rowId deletedAt } } }`,
        { ...as(OWNER), variables: { id } },
      ),
    );
    const entry = expectOneEntry(audit, "incident.restored", OWNER);
    expect(audit.result.data?.restoreIncident.result).toEqual({ rowId: id, deletedAt: null });
    expect(entry).toMatchObject({ incident_id: id, resource_label: "Deleted by mistake" });
  });

  // NIS2 milestones.

  it("enabling NIS2 records incident.updated and three milestone.created, all from the same request", async () => {
    const id = await newIncident("Outage at a hospital");
    const audit = await audited(() =>
      web.gql<{ updateIncidentByRowId: { incident: { nis2Enabled: boolean } } }>(
        `mutation ($id: UUID!) {
           updateIncidentByRowId(input: { rowId: $id, patch: { nis2Enabled: true } }) { incident { nis2Enabled } }
         }`,
        { ...as(OWNER), variables: { id } },
      ),
    );
    expectSucceeded(audit.result);
    expect(audit.result.data?.updateIncidentByRowId.incident.nis2Enabled).toBe(true);
    expect(audit.entries.map((e) => [e.action, e.resource_label])).toEqual([
      ["incident.updated", "Outage at a hospital"],
      ["milestone.created", "Early Warning · Outage at a hospital"],
      ["milestone.created", "Full Notification · Outage at a hospital"],
      ["milestone.created", "Final Report · Outage at a hospital"],
    ]);
    expect(audit.entries[0].changes).toEqual({ nis2_enabled: { old: false, new: true } });
    for (const entry of audit.entries) {
      expect(entry).toMatchObject({
        actor_label: OWNER,
        request_id: audit.result.requestId,
        surface: "graphql",
        db_role: t.db.roles.visitor,
        incident_id: id,
      });
    }
  });

  it("completeMilestone records milestone.completed", async () => {
    const id = await newIncident("Data leak via S3 bucket");
    await enableNis2(id);
    const milestones = await web.gql<{
      incidentByRowId: { milestones: { nodes: Array<{ rowId: string; kind: string }> } };
    }>(`query ($id: UUID!) { incidentByRowId(rowId: $id) { milestones { nodes { rowId kind } } } }`, {
      ...as(MEMBER),
      variables: { id },
    });
    const early = expectSucceeded(milestones).incidentByRowId.milestones.nodes.find((m) => m.kind === "early_warning");
    expect(early?.rowId).toMatch(UUID);
    const audit = await audited(() =>
      web.gql<{ completeMilestone: { result: { completedAt: string | null; notes: string; status: string } } }>(
        `mutation ($id: UUID!) {
           completeMilestone(input: { id: $id, notes: "Early warning sent to the CSIRT" }) { result { completedAt notes status } }
         }`,
        { ...as(MEMBER), variables: { id: early?.rowId } },
      ),
    );
    const entry = expectOneEntry(audit, "milestone.completed", MEMBER);
    expect(audit.result.data?.completeMilestone.result).toMatchObject({
      notes: "Early warning sent to the CSIRT",
      status: "completed",
    });
    expect(audit.result.data?.completeMilestone.result.completedAt).toBeTruthy();
    expect(entry).toMatchObject({
      resource_type: "milestone",
      resource_id: early?.rowId,
      incident_id: id,
      resource_label: "Early Warning · Data leak via S3 bucket",
    });
    expect(entry.changes.notes).toEqual({ old: null, new: "Early warning sent to the CSIRT" });
  });

  // Exports.

  it("createExport records export.requested", async () => {
    const id = await newIncident("Phishing wave");
    const audit = await audited(() =>
      web.gql<{ createExport: { export: { rowId: string; status: string } } }>(
        `mutation ($id: UUID!) { createExport(input: { export: { incidentId: $id } }) { export { rowId status } } }`,
        { ...as(ADMIN), variables: { id } },
      ),
    );
    const entry = expectOneEntry(audit, "export.requested", ADMIN);
    const created = audit.result.data?.createExport.export;
    expect(created?.status).toBe("queued");
    expect(entry).toMatchObject({
      resource_type: "export",
      resource_id: created?.rowId,
      incident_id: id,
      resource_label: "Evidence pack · Phishing wave",
    });
  });

  // Webhooks.

  it("createWebhook records webhook.created, returns the secret once and never writes it to the audit log", async () => {
    const audit = await audited(() =>
      web.gql<{ createWebhook: { result: { rowId: string; url: string; secret: string; actions: string[] } } }>(
        `mutation { createWebhook(input: { url: "https://siem.example.com/attest", actions: ["incident.*"] }) {
           result { rowId url secret actions } } }`,
        as(ADMIN),
      ),
    );
    const entry = expectOneEntry(audit, "webhook.created", ADMIN);
    const created = audit.result.data?.createWebhook.result;
    expect(created).toMatchObject({ url: "https://siem.example.com/attest", actions: ["incident.*"] });
    expect(created?.secret).toMatch(/^[0-9a-f]{64}$/);
    expect(entry).toMatchObject({
      resource_type: "webhook",
      resource_id: created?.rowId,
      resource_label: "https://siem.example.com/attest",
    });
    expect(entry.row_text).not.toContain(created?.secret);
    expect(JSON.stringify(entry.changes)).not.toContain(created?.secret);
  });

  it("updateWebhookByRowId records webhook.updated", async () => {
    const id = await newWebhook("https://hooks.example.com/before");
    const audit = await audited(() =>
      web.gql<{ updateWebhookByRowId: { webhook: { url: string; description: string } } }>(
        `mutation ($id: UUID!) {
           updateWebhookByRowId(input: { rowId: $id, patch: { url: "https://hooks.example.com/after", description: "SOC" } }) {
             webhook { url description } } }`,
        { ...as(ADMIN), variables: { id } },
      ),
    );
    const entry = expectOneEntry(audit, "webhook.updated", ADMIN);
    expect(audit.result.data?.updateWebhookByRowId.webhook).toEqual({
      url: "https://hooks.example.com/after",
      description: "SOC",
    });
    expect(entry).toMatchObject({ resource_id: id, resource_label: "https://hooks.example.com/after" });
    expect(entry.changes).toEqual({
      url: { old: "https://hooks.example.com/before", new: "https://hooks.example.com/after" },
      description: { old: "", new: "SOC" },
    });
  });

  it("deleteWebhookByRowId records webhook.deleted", async () => {
    const id = await newWebhook("https://hooks.example.com/gone");
    const audit = await audited(() =>
      web.gql<{ deleteWebhookByRowId: { webhook: { rowId: string } } }>(
        `mutation ($id: UUID!) { deleteWebhookByRowId(input: { rowId: $id }) { webhook { rowId } } }`,
        { ...as(OWNER), variables: { id } },
      ),
    );
    const entry = expectOneEntry(audit, "webhook.deleted", OWNER);
    expect(audit.result.data?.deleteWebhookByRowId.webhook.rowId).toBe(id);
    expect(entry).toMatchObject({ resource_id: id, resource_label: "https://hooks.example.com/gone" });
    const { rows } = await t.superuser.query("select count(*)::int as n from app_public.webhooks where id = $1", [id]);
    expect(rows[0].n).toBe(0);
  });

  // Memberships.

  it("inviteMember records invitation.created; acceptInvitation records invitation.accepted and membership.created by the invitee", async () => {
    const { rows } = await t.superuser.query<{ id: string }>(
      "insert into app_public.users (email, name) values ('new.analyst@demo.test', 'Nora Analyst') returning id",
    );
    userIds["new.analyst@demo.test"] = rows[0].id;
    const invite = await audited(() =>
      web.gql<{ inviteMember: { result: { rowId: string; email: string; role: string; token: string } } }>(
        `mutation { inviteMember(input: { email: "New.Analyst@demo.test", role: "viewer" }) { result { rowId email role token } } }`,
        as(OWNER),
      ),
    );
    const created = expectOneEntry(invite, "invitation.created", OWNER);
    const result = expectSucceeded(invite.result).inviteMember.result;
    expect(result).toMatchObject({ email: "new.analyst@demo.test", role: "viewer" });
    expect(result.token).toMatch(/^inv_[0-9a-f]{48}$/);
    expect(created).toMatchObject({
      resource_type: "invitation",
      resource_id: result.rowId,
      resource_label: "new.analyst@demo.test",
    });
    expect(created.changes.role).toEqual({ new: "viewer" });
    expect(JSON.stringify(created)).not.toContain(result.token);

    const cookie = `attest_session=${await sessionFor(t, "new.analyst@demo.test")}`;
    const accept = await audited(() =>
      web.gql<{ acceptInvitation: { result: { state: string; tenantName: string } } }>(
        "mutation ($token: String!) { acceptInvitation(input: { token: $token }) { result { state tenantName } } }",
        { cookie, variables: { token: result.token } },
      ),
    );
    expect(expectSucceeded(accept.result).acceptInvitation.result).toEqual({
      state: "accepted",
      tenantName: "Demo Energy GmbH",
    });
    expect(accept.entries.map((e) => `${e.action} by ${e.actor_label}`)).toEqual([
      "invitation.accepted by new.analyst@demo.test",
      "membership.created by new.analyst@demo.test",
    ]);
    expect(accept.entries[1]).toMatchObject({ resource_id: rows[0].id, changes: { role: { new: "viewer" } } });
  });

  it("updateMembership (role change by the owner) records membership.updated", async () => {
    const userId = await newMember("promoted@demo.test", "member");
    const audit = await audited(() =>
      web.gql<{ updateMembership: { membership: { role: string } } }>(
        `mutation ($tenantId: UUID!, $userId: UUID!) {
           updateMembership(input: { tenantId: $tenantId, userId: $userId, patch: { role: "admin" } }) { membership { role } } }`,
        { ...as(OWNER), variables: { tenantId: demo, userId } },
      ),
    );
    const entry = expectOneEntry(audit, "membership.updated", OWNER);
    expect(audit.result.data?.updateMembership.membership.role).toBe("admin");
    expect(entry).toMatchObject({ resource_id: userId, resource_label: "promoted@demo.test" });
    expect(entry.changes).toEqual({ role: { old: "member", new: "admin" } });
  });

  it("deleteMembership records membership.deleted", async () => {
    const userId = await newMember("leaver@demo.test", "member");
    const audit = await audited(() =>
      web.gql<{ deleteMembership: { deletedMembershipId: string | null } }>(
        `mutation ($tenantId: UUID!, $userId: UUID!) {
           deleteMembership(input: { tenantId: $tenantId, userId: $userId }) { deletedMembershipId } }`,
        { ...as(OWNER), variables: { tenantId: demo, userId } },
      ),
    );
    const entry = expectOneEntry(audit, "membership.deleted", OWNER);
    expect(audit.result.data?.deleteMembership.deletedMembershipId).toBeTruthy();
    expect(entry).toMatchObject({ resource_id: userId, resource_label: "leaver@demo.test" });
    const { rows } = await t.superuser.query(
      "select count(*)::int as n from app_public.memberships where tenant_id = $1 and user_id = $2",
      [demo, userId],
    );
    expect(rows[0].n).toBe(0);
  });

  // API tokens.

  it("createApiToken records api_token.created and returns a token that works as a bearer token", async () => {
    const audit = await audited(() =>
      web.gql<{ createApiToken: { result: { rowId: string; name: string; token: string; tokenPrefix: string } } }>(
        `mutation { createApiToken(input: { name: "SIEM export" }) { result { rowId name token tokenPrefix } } }`,
        as(ADMIN),
      ),
    );
    const entry = expectOneEntry(audit, "api_token.created", ADMIN);
    const created = audit.result.data?.createApiToken.result;
    expect(created?.name).toBe("SIEM export");
    expect(created?.token).toMatch(/^att_[0-9a-f]{48}$/);
    expect(created?.token.startsWith(created.tokenPrefix)).toBe(true);
    expect(entry).toMatchObject({
      resource_type: "api_token",
      resource_id: created?.rowId,
      resource_label: "SIEM export",
    });
    expect(entry.row_text).not.toContain(created?.token);

    const me = await web.gql<{ currentUser: { email: string } }>("{ currentUser { email } }", {
      token: created?.token,
    });
    expect(me.errors).toBeUndefined();
    expect(me.status).toBe(200);
    expect(me.data?.currentUser.email).toBe(ADMIN);
  });

  it("a mutation made with an API token records the token's user as the actor", async () => {
    const { token } = await newToken("Ticketing integration");
    const audit = await audited(() =>
      web.gql<{ createIncident: { incident: { rowId: string } } }>(
        `mutation { createIncident(input: { incident: { title: "Filed by the ticketing system" } }) { incident { rowId } } }`,
        { token },
      ),
    );
    const entry = expectOneEntry(audit, "incident.created", ADMIN);
    expect(entry).toMatchObject({
      resource_label: "Filed by the ticketing system",
      incident_id: audit.result.data?.createIncident.incident.rowId,
    });
  });

  it("revokeApiToken records api_token.revoked, after which the token is refused with 401", async () => {
    const { rowId, token } = await newToken("Short-lived");
    expect((await web.gql("{ currentUser { email } }", { token })).status).toBe(200);
    const audit = await audited(() =>
      web.gql<{ revokeApiToken: { result: { rowId: string; revokedAt: string | null } } }>(
        `mutation ($id: UUID!) { revokeApiToken(input: { id: $id }) { result { rowId revokedAt } } }`,
        { ...as(OWNER), variables: { id: rowId } },
      ),
    );
    const entry = expectOneEntry(audit, "api_token.revoked", OWNER);
    expect(audit.result.data?.revokeApiToken.result.rowId).toBe(rowId);
    expect(audit.result.data?.revokeApiToken.result.revokedAt).toBeTruthy();
    expect(entry).toMatchObject({ resource_id: rowId, resource_label: "Short-lived" });

    const refused = await web.gql("{ currentUser { email } }", { token });
    expect(refused.status).toBe(401);
    expect(refused.data ?? null).toBeNull();
    expect(refused.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    expect(refused.errors?.[0]?.message).toMatch(/API token/);
  });

  // Evidence.

  it("deleteEvidenceByRowId records evidence.deleted", async () => {
    const { rows } = await t.superuser.query<{ id: string; filename: string; incident_id: string; blob_id: string }>(
      `select e.id, e.filename, e.incident_id, e.blob_id from app_public.evidence e
       join app_public.incidents i on i.tenant_id = e.tenant_id and i.id = e.incident_id
       where e.tenant_id = $1 and i.deleted_at is null order by e.created_at limit 1`,
      [demo],
    );
    expect(rows).toHaveLength(1);
    const evidence = rows[0];
    const audit = await audited(() =>
      web.gql<{ deleteEvidenceByRowId: { evidence: { rowId: string; filename: string } } }>(
        `mutation ($id: UUID!) { deleteEvidenceByRowId(input: { rowId: $id }) { evidence { rowId filename } } }`,
        { ...as(MEMBER), variables: { id: evidence.id } },
      ),
    );
    const entry = expectOneEntry(audit, "evidence.deleted", MEMBER);
    expect(audit.result.data?.deleteEvidenceByRowId.evidence).toEqual({
      rowId: evidence.id,
      filename: evidence.filename,
    });
    expect(entry).toMatchObject({
      resource_type: "evidence",
      resource_id: evidence.id,
      incident_id: evidence.incident_id,
      resource_label: evidence.filename,
    });
    expect(entry.changes.filename).toEqual({ old: evidence.filename });
  });

  // Failures.

  it("a failed mutation leaves no audit entry and explains what is wrong (BAD_USER_INPUT)", async () => {
    const audit = await audited(() =>
      web.gql<{ createIncident: unknown }>(
        `mutation { createIncident(input: { incident: { title: "" } }) { incident { rowId } } }`,
        as(MEMBER),
      ),
    );
    expect(audit.entries).toEqual([]);
    expect(audit.result.data?.createIncident ?? null).toBeNull();
    expect(audit.result.errors).toHaveLength(1);
    expect(audit.result.errors?.[0]).toMatchObject({
      message: "The title must be 1 to 255 characters and not blank.",
      extensions: { code: "BAD_USER_INPUT" },
    });
    const { rows } = await t.superuser.query(
      "select count(*)::int as n from app_public.incidents where tenant_id = $1 and title = ''",
      [demo],
    );
    expect(rows[0].n).toBe(0);
  });
});
