/**
 * Tenant isolation over GraphQL: through every surface we expose (lists, node ids, filters,
 * nested relations, lookups by id, mutations), a user of tenant A never reads or changes
 * anything of tenant B.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withContext } from "../../src/db/context.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

interface Other {
  tenantId: string;
  incidentId: string;
  incidentNodeId: string;
  milestoneId: string;
  webhookId: string;
  evidenceId: string;
  auditNodeId: string;
}

describe.each(servers())("tenant isolation on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let cookie: string;
  let other: Other;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
    // Tenant B ("acme", every feature) with one owner and some of everything.
    const { rows } = await t.superuser.query(
      "insert into app_public.tenants (slug, name, plan_id) values ('acme', 'Acme Grid', 'business') returning id",
    );
    const tenantId = rows[0].id as string;
    await t.superuser.query(
      "insert into app_public.users (email, name) values ('boss@acme.test', 'Boss'); insert into app_public.memberships (tenant_id, user_id, role) select $1, id, 'owner' from app_public.users where email = 'boss@acme.test'".replace(
        "$1",
        `'${tenantId}'`,
      ),
    );
    const ids = await withContext(t.pools.owner, { surface: "sql" }, async (c) => {
      const incident = await c.query(
        "insert into app_public.incidents (tenant_id, title, nis2_enabled) values ($1, 'Acme secret outage', true) returning id",
        [tenantId],
      );
      const incidentId = incident.rows[0].id as string;
      const milestone = await c.query("select id from app_public.nis2_milestones where incident_id = $1 limit 1", [
        incidentId,
      ]);
      const webhook = await c.query(
        "insert into app_public.webhooks (tenant_id, url) values ($1, 'https://acme.example/hook') returning id",
        [tenantId],
      );
      const { writeBlob } = await import("../../src/db/blobs.ts");
      const blob = await writeBlob(c, tenantId, [Buffer.from("acme secret")]);
      const evidence = await c.query(
        "insert into app_public.evidence (tenant_id, incident_id, filename, blob_id) values ($1, $2, 'acme.txt', $3) returning id",
        [tenantId, incidentId, blob.id],
      );
      const audit = await c.query("select id from app_public.audit_log where tenant_id = $1 order by id desc limit 1", [
        tenantId,
      ]);
      return {
        incidentId,
        milestoneId: milestone.rows[0].id as string,
        webhookId: webhook.rows[0].id as string,
        evidenceId: evidence.rows[0].id as string,
        auditId: audit.rows[0].id as string,
      };
    });
    const nodeId = (type: string, ...keys: string[]) => Buffer.from(JSON.stringify([type, ...keys])).toString("base64");
    other = {
      tenantId,
      ...ids,
      incidentNodeId: nodeId("Incident", tenantId, ids.incidentId),
      auditNodeId: nodeId("AuditLog", tenantId, ids.auditId),
    };
    cookie = await web.signIn("owner@demo.test");
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  const ask = (query: string, variables: Record<string, unknown> = {}) => web.gql(query, { cookie, variables });
  const text = (value: unknown) => JSON.stringify(value);

  it("the node ids we forge are the ones the API uses (so the node tests below mean something)", async () => {
    const own = await ask("{ incidents(first: 1) { nodes { id tenantId rowId } } }");
    const node = (own.data as { incidents: { nodes: Array<{ id: string; tenantId: string; rowId: string }> } })
      .incidents.nodes[0];
    expect(JSON.parse(Buffer.from(node.id, "base64").toString())).toEqual(["Incident", node.tenantId, node.rowId]);
  });

  it("lists show only the current tenant", async () => {
    const r = await ask(
      "{ incidents { nodes { tenantId title } } evidences { nodes { tenantId } } webhooks { nodes { tenantId } } nis2Milestones { nodes { tenantId } } auditLogs(first: 100) { nodes { tenantId } } tenants { nodes { slug } } users { nodes { email } } memberships { nodes { tenantId } } }",
    );
    expect(r.errors).toBeUndefined();
    expect(text(r.data)).not.toContain(other.tenantId);
    expect(text(r.data)).not.toContain("Acme");
    expect(text(r.data)).not.toContain("boss@acme.test");
  });

  it("node ids and lookups by id of the other tenant return nothing", async () => {
    const r = await ask(
      `query($node: ID!, $audit: ID!, $incident: UUID!, $milestone: UUID!, $webhook: UUID!, $evidence: UUID!, $tenant: UUID!) {
        node(id: $node) { id }
        auditNode: node(id: $audit) { id }
        incidentByRowId(rowId: $incident) { title }
        nis2MilestoneByRowId(rowId: $milestone) { kind }
        webhookByRowId(rowId: $webhook) { url }
        evidenceByRowId(rowId: $evidence) { filename }
        tenant(rowId: $tenant) { slug }
        incident(tenantId: $tenant, rowId: $incident) { title }
      }`,
      {
        node: other.incidentNodeId,
        audit: other.auditNodeId,
        incident: other.incidentId,
        milestone: other.milestoneId,
        webhook: other.webhookId,
        evidence: other.evidenceId,
        tenant: other.tenantId,
      },
    );
    expect(r.errors).toBeUndefined();
    expect(r.data).toEqual({
      node: null,
      auditNode: null,
      incidentByRowId: null,
      nis2MilestoneByRowId: null,
      webhookByRowId: null,
      evidenceByRowId: null,
      tenant: null,
      incident: null,
    });
  });

  it("filters naming the other tenant find nothing", async () => {
    const r = await ask(
      `query($tenant: UUID!, $incident: UUID!) {
        incidents(condition: { tenantId: $tenant }) { totalCount }
        auditLogs(condition: { tenantId: $tenant }) { totalCount }
        byIncident: auditLogs(condition: { incidentId: $incident }) { totalCount }
        byLabel: auditLogs(condition: { resourceLabelContains: "Acme" }) { totalCount }
      }`,
      { tenant: other.tenantId, incident: other.incidentId },
    );
    expect(r.errors).toBeUndefined();
    expect(r.data).toEqual({
      incidents: { totalCount: 0 },
      auditLogs: { totalCount: 0 },
      byIncident: { totalCount: 0 },
      byLabel: { totalCount: 0 },
    });
  });

  it("nested relations stay inside the tenant", async () => {
    const r = await ask(
      "{ currentTenant { memberships { nodes { user { email } } } incidents { totalCount } } currentUser { memberships { nodes { tenant { slug } } } } }",
    );
    expect(r.errors).toBeUndefined();
    expect(text(r.data)).not.toContain("acme");
  });

  it("mutations cannot touch the other tenant's rows", async () => {
    const attempts = await Promise.all([
      ask(
        'mutation($id: UUID!) { updateIncidentByRowId(input: { rowId: $id, patch: { title: "pwned" } }) { incident { title } } }',
        {
          id: other.incidentId,
        },
      ),
      ask("mutation($id: UUID!) { deleteIncident(input: { id: $id }) { result { rowId } } }", { id: other.incidentId }),
      ask("mutation($id: UUID!) { completeMilestone(input: { id: $id }) { result { rowId } } }", {
        id: other.milestoneId,
      }),
      ask("mutation($id: UUID!) { deleteWebhookByRowId(input: { rowId: $id }) { webhook { rowId } } }", {
        id: other.webhookId,
      }),
      ask("mutation($id: UUID!) { deleteEvidenceByRowId(input: { rowId: $id }) { evidence { rowId } } }", {
        id: other.evidenceId,
      }),
      ask("mutation($id: UUID!) { createExport(input: { export: { incidentId: $id } }) { export { rowId } } }", {
        id: other.incidentId,
      }),
      ask(
        'mutation($node: ID!) { updateIncident(input: { id: $node, patch: { title: "pwned" } }) { incident { title } } }',
        {
          node: other.incidentNodeId,
        },
      ),
    ]);
    for (const attempt of attempts) {
      // Refused with an error, or answered with nothing (e.g. updateIncidentByRowId → incident: null).
      const nothing = Object.values(attempt.data ?? {}).every(
        (v) => v === null || Object.values(v as object).every((x) => x === null),
      );
      expect((attempt.errors?.length ?? 0) > 0 || nothing, text(attempt)).toBe(true);
      expect(text(attempt)).not.toContain("pwned");
    }
    const { rows } = await t.superuser.query(
      `select (select title from app_public.incidents where id = $1) as title,
              (select deleted_at from app_public.incidents where id = $1) as deleted_at,
              (select completed_at from app_public.nis2_milestones where id = $2) as completed_at,
              (select count(*)::int from app_public.webhooks where id = $3) as webhooks,
              (select count(*)::int from app_public.evidence where id = $4) as evidence,
              (select count(*)::int from app_public.exports where incident_id = $1) as exports`,
      [other.incidentId, other.milestoneId, other.webhookId, other.evidenceId],
    );
    expect(rows[0]).toEqual({
      title: "Acme secret outage",
      deleted_at: null,
      completed_at: null,
      webhooks: 1,
      evidence: 1,
      exports: 0,
    });
  });

  it("the other tenant's evidence cannot be downloaded", async () => {
    const response = await fetch(`${web.url}/api/evidence/${other.evidenceId}/download`, {
      headers: { Cookie: cookie },
    });
    expect(response.status).toBe(404);
    expect(await response.text()).not.toContain("acme secret");
  });

  it("asking for the other tenant by X-Tenant is refused", async () => {
    const r = await web.gql("{ incidents { totalCount } }", { cookie, tenant: "acme" });
    expect(r.status).toBe(404);
    expect(r.errors?.[0].extensions?.code).toBe("UNKNOWN_TENANT");
  });
});
