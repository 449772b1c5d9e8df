/**
 * Property-based fuzzing (fast-check) of every page's query parameters and path segments, the
 * evidence and pack endpoints, and the variables of every documented GraphQL operation: no
 * answer is a 5xx, none carries a stack trace, SQL or PostgreSQL's own text, and the pool is
 * whole afterwards. Seeded and reproducible: FUZZ_SEED=<n> repeats a run (fast-check prints the
 * seed and the shrunk counterexample of a failure); FUZZ_RUNS=<n> changes the number of cases.
 * Each case sends a batch of requests at once, so a run makes several thousand requests.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csrfToken } from "../../src/http/csrf.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";
import { LEAKS } from "../helpers/leaks.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_201);
const RUNS = Number(process.env.FUZZ_RUNS ?? 400);
const BATCH = 6;

/** Values careless clients and attackers send: NUL, impossible dates, huge numbers, SQL, markup, encodings. */
const nasty = fc.oneof(
  fc.constantFrom(
    "\u0000",
    "a\u0000b",
    "%00",
    "2024-02-31",
    "2023-02-29",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "10000-01-01",
    "-1",
    "0",
    "1e308",
    "99999999999999999999999",
    "NaN",
    "' or 1=1 --",
    "\\",
    "%",
    "_",
    "<script>alert(1)</script>",
    "../../etc/passwd",
    "invoice\u202Efdp.exe",
    "\uFEFF",
    "\uD800",
    "00000000-0000-0000-0000-000000000000",
    "demo",
    "basic",
    "incident.",
    "incident.*",
    "true",
    "null",
    "[]",
    "{}",
    " ",
    "",
  ),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 20 }),
  fc.uuid(),
  fc.integer().map(String),
  fc.date({ noInvalidDate: false }).map((d) => (Number.isNaN(d.getTime()) ? "Invalid Date" : d.toISOString())),
  fc.string({ minLength: 300, maxLength: 3000 }),
);

/** A value as it appears in a URL: properly encoded, or raw bytes and broken percent escapes. */
const urlPart = fc.oneof(
  { weight: 4, arbitrary: nasty.map((v) => encodeURIComponent(v.replace(/[\uD800-\uDFFF]/g, "x"))) },
  {
    weight: 1,
    arbitrary: fc.constantFrom("%", "%E0%A4%A", "%zz", "%C0%AE%C0%AE", "%2e%2e", "..", ".", "%u0000", "%FF"),
  },
);

const QUERY_KEYS = [
  "q",
  "action",
  "from",
  "to",
  "page",
  "status",
  "days",
  "deleted",
  "edit",
  "tenant",
  "next",
  "_csrf",
  "signed_out",
];

describe.each(servers().slice(0, 1))("fuzzing on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let owner: string;
  let token: string;
  let incidentId: string;
  let evidenceId: string;
  let webhookId: string;
  let exportId: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
    owner = await web.signIn("owner@demo.test");
    token =
      (
        await web.gql<{ createApiToken: { result: { token: string } } }>(
          'mutation { createApiToken(input: { name: "fuzz" }) { result { token } } }',
          { cookie: owner, tenant: "demo" },
        )
      ).data?.createApiToken.result.token ?? "";
    const one = async (sql: string) => (await t.superuser.query(sql)).rows[0]?.id as string;
    incidentId = await one(
      "select i.id from app_public.incidents i join app_public.tenants t on t.id = i.tenant_id where t.slug = 'demo' order by i.created_at limit 1",
    );
    evidenceId = await one("select id from app_public.evidence where incident_id is not null limit 1");
    webhookId = await one("select id from app_public.webhooks limit 1");
    exportId = (await one("select id from app_public.exports limit 1")) ?? "00000000-0000-4000-8000-000000000000";
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  /** One request; returns a problem description, or null when the answer is acceptable. */
  async function check(path: string, init: RequestInit = {}): Promise<string | null> {
    let response: Response;
    try {
      response = await fetch(`${web.url}${path}`, { redirect: "manual", ...init });
    } catch (error) {
      return `${path}: no answer (${(error as Error).message})`;
    }
    const body = await response.text();
    if (response.status >= 500) return `${path}: ${response.status} ${body.slice(0, 300)}`;
    const leak = LEAKS.exec(body);
    if (leak) return `${path}: leaks "${leak[0]}" in ${body.slice(Math.max(0, leak.index - 100), leak.index + 200)}`;
    if (/"code":"INTERNAL"/.test(body)) return `${path}: INTERNAL ${body.slice(0, 300)}`;
    return null;
  }

  async function batch(requests: Array<[string, RequestInit?]>) {
    const problems = (await Promise.all(requests.map(([path, init]) => check(path, init)))).filter(Boolean);
    expect(problems).toEqual([]);
  }

  const cookieInit = (): RequestInit => ({ headers: { Cookie: owner } });

  it("pages answer any query parameters without a 5xx or a leak", async () => {
    const pages = () => [
      "/t/demo/incidents",
      `/t/demo/incidents/${incidentId}`,
      `/t/demo/incidents/${incidentId}/fields/title`,
      "/t/demo/audit",
      "/t/demo/milestones/overdue",
      "/t/demo/webhooks",
      "/t/demo/members",
      "/t/demo/tokens",
      "/t/basic/incidents",
      "/",
      "/account",
      "/invitations/inv_000000000000000000000000000000000000000000000000",
      "/switch",
      "/login",
      `/api/evidence/${evidenceId}/download`,
      `/api/exports/${exportId}/pack.zip`,
    ];
    const query = fc.array(fc.tuple(fc.constantFrom(...QUERY_KEYS), urlPart), { minLength: 1, maxLength: 5 });
    const request = fc.tuple(fc.constantFrom(...pages()), query, fc.boolean());
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: BATCH, maxLength: BATCH }), async (requests) => {
        await batch(
          requests.map(([page, params, htmx]) => [
            `${page}?${params.map(([k, v]) => `${k}=${v}`).join("&")}`,
            { headers: { Cookie: owner, ...(htmx ? { "HX-Request": "true" } : {}) } },
          ]),
        );
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  });

  it("pages and endpoints answer any path segment without a 5xx or a leak", async () => {
    const shapes: Array<(s: string) => string> = [
      (s) => `/t/${s}/incidents`,
      (s) => `/t/${s}/audit`,
      (s) => `/t/demo/audit/${s}`,
      (s) => `/t/demo/audit/e/${s}`,
      (s) => `/t/demo/audit/${s}/leaf`,
      (s) => `/t/demo/${s}`,
      (s) => `/t/demo/incidents/${s}`,
      (s) => `/t/demo/incidents/${s}/fields/title`,
      (s) => `/t/demo/incidents/${incidentId}/fields/${s}`,
      (s) => `/t/demo/incidents/${incidentId}/evidence/${s}/download`,
      (s) => `/t/demo/exports/${s}/pack.zip`,
      (s) => `/t/demo/exports/${s}/report.pdf`,
      (s) => `/api/evidence/${s}/download`,
      (s) => `/api/exports/${s}/report.pdf`,
      (s) => `/static/${s}`,
      (s) => `/${s}`,
    ];
    const request = fc.tuple(fc.integer({ min: 0, max: shapes.length - 1 }), urlPart, fc.boolean());
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: BATCH, maxLength: BATCH }), async (requests) => {
        await batch(
          requests.map(([shape, segment, asToken]) => [
            shapes[shape](segment),
            asToken ? { headers: { Authorization: `Bearer ${token}` } } : cookieInit(),
          ]),
        );
      }),
      { seed: SEED + 1, numRuns: RUNS, endOnFailure: true },
    );
  });

  it("GraphQL answers any variables of the documented operations without a 5xx, INTERNAL or a leak", async () => {
    const operations: Array<{ query: string; variables: Record<string, fc.Arbitrary<unknown>> }> = [];
    const any = fc.oneof(nasty, fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.jsonValue());
    // Mostly values of the right GraphQL type (so that the operation runs), sometimes anything.
    const typed = <T>(arbitrary: fc.Arbitrary<T>) =>
      fc.oneof({ weight: 6, arbitrary: arbitrary as fc.Arbitrary<unknown> }, { weight: 1, arbitrary: any });
    const str = typed(nasty);
    const cursor = typed(fc.oneof(nasty, fc.base64String(), fc.constant("WyJuYXR1cmFsIiwxXQ==")));
    const int = typed(fc.oneof(fc.integer({ min: -5, max: 120 }), fc.integer()));
    const uuid = typed(fc.oneof(fc.uuid(), fc.constant("00000000-0000-0000-0000-000000000000")));
    const bool = typed(fc.boolean());
    const when = typed(
      fc.oneof(
        fc.constantFrom("2024-02-31", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "2023-02-29T10:00:00+01:00"),
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
        nasty,
      ),
    );
    operations.push(
      {
        query:
          "query($first: Int, $after: Cursor, $offset: Int, $c: AuditLogCondition) { auditLogs(first: $first, after: $after, offset: $offset, condition: $c) { totalCount pageInfo { endCursor } nodes { seq action } } }",
        variables: {
          first: int,
          after: cursor,
          offset: int,
          c: fc.record(
            {
              action: str,
              actionPrefix: str,
              actorLabel: str,
              actorContains: str,
              resourceLabelContains: str,
              occurredAfter: when,
              occurredBefore: when,
              incidentId: uuid,
              seq: typed(fc.oneof(fc.bigInt().map(String), nasty)),
            },
            { requiredKeys: [] },
          ),
        },
      },
      {
        query:
          "query($first: Int, $last: Int, $before: Cursor, $cond: IncidentCondition) { incidents(first: $first, last: $last, before: $before, condition: $cond) { nodes { rowId auditTrail(first: $first) { nodes { seq } } } } }",
        variables: {
          first: int,
          last: int,
          before: cursor,
          cond: fc.record({ rowId: uuid, tenantId: uuid }, { requiredKeys: [] }),
        },
      },
      {
        query:
          "query($id: UUID!, $n: Int) { webhookDeliveries(webhookId: $id, maxRows: $n) { nodes { status } } signingKeys { nodes { fingerprint } } currentChainVerification { nodes { valid } } }",
        variables: { id: fc.oneof(uuid, fc.constant(webhookId)), n: int },
      },
      {
        query:
          "mutation($t: String!, $s: String, $d: String) { createIncident(input: { incident: { title: $t, severity: $s, description: $d } }) { incident { rowId } } }",
        variables: { t: str, s: str, d: str },
      },
      {
        query:
          "mutation($id: UUID!, $p: IncidentPatch!) { updateIncidentByRowId(input: { rowId: $id, patch: $p }) { incident { rowId } } }",
        variables: {
          id: fc.oneof(uuid, fc.constant(incidentId)),
          p: fc.record(
            { title: str, severity: str, status: str, description: str, rootCause: str, nis2Enabled: bool },
            { requiredKeys: [] },
          ),
        },
      },
      {
        query:
          "mutation($u: String, $d: String, $a: [String]) { createWebhook(input: { url: $u, description: $d, actions: $a }) { result { rowId } } }",
        variables: { u: str, d: str, a: typed(fc.array(nasty, { maxLength: 4 })) },
      },
      {
        query:
          "mutation($id: UUID!, $u: String, $a: Boolean) { updateWebhookByRowId(input: { rowId: $id, patch: { url: $u, active: $a } }) { webhook { rowId } } }",
        variables: { id: fc.oneof(uuid, fc.constant(webhookId)), u: str, a: bool },
      },
      {
        query:
          "mutation($id: UUID!, $n: String) { completeMilestone(input: { id: $id, notes: $n }) { clientMutationId } }",
        variables: { id: uuid, n: str },
      },
      {
        query: "mutation($e: String, $r: String) { inviteMember(input: { email: $e, role: $r }) { result { rowId } } }",
        variables: { e: str, r: str },
      },
      {
        query:
          "mutation($t: String, $id: UUID) { acceptInvitation(input: { token: $t, id: $id }) { clientMutationId } }",
        variables: { t: str, id: uuid },
      },
      {
        query:
          "mutation($t: String, $id: UUID) { declineInvitation(input: { token: $t, id: $id }) { clientMutationId } }",
        variables: { t: str, id: uuid },
      },
      {
        query: "mutation($id: UUID) { revokeInvitation(input: { id: $id }) { clientMutationId } }",
        variables: { id: uuid },
      },
      {
        query:
          "mutation($n: String!, $x: Datetime) { createApiToken(input: { name: $n, expiresAt: $x }) { result { rowId } } }",
        variables: { n: str, x: when },
      },
      {
        query: "mutation($id: UUID!) { createExport(input: { export: { incidentId: $id } }) { export { rowId } } }",
        variables: { id: uuid },
      },
      {
        query:
          "mutation($id: UUID!, $f: String) { updateEvidenceByRowId(input: { rowId: $id, patch: { filename: $f } }) { evidence { rowId } } }",
        variables: { id: fc.oneof(uuid, fc.constant(evidenceId)), f: str },
      },
    );
    const operation = fc
      .integer({ min: 0, max: operations.length - 1 })
      .chain((i) => fc.record(operations[i].variables, { requiredKeys: [] }).map((variables) => ({ i, variables })));
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(operation, fc.boolean()), { minLength: BATCH, maxLength: BATCH }),
        async (requests) => {
          await batch(
            requests.map(([{ i, variables }, asToken]) => [
              "/graphql",
              {
                method: "POST",
                headers: {
                  "Content-Type": "application/json",
                  ...(asToken
                    ? { Authorization: `Bearer ${token}` }
                    : { Cookie: owner, Origin: web.url, "X-Tenant": "demo" }),
                },
                body: JSON.stringify({ query: operations[i].query, variables }),
              },
            ]),
          );
        },
      ),
      { seed: SEED + 2, numRuns: RUNS, endOnFailure: true },
    );
    // After thousands of requests every pooled connection is back.
    const pool = t.pools.auth;
    expect(pool.waitingCount).toBe(0);
    expect(pool.totalCount - pool.idleCount).toBe(0);
  });
  it("forms answer any posted fields without a 5xx or a leak", async () => {
    // An admin posts (so the owner's membership, used above, is never at stake).
    const admin = await web.signIn("admin@demo.test");
    const csrf = csrfToken(decodeURIComponent(admin.split("=")[1]));
    const milestone = (await t.superuser.query("select id from app_public.nis2_milestones limit 1")).rows[0]?.id;
    const userId = (await t.superuser.query("select id from app_public.users where email = 'viewer@demo.test'")).rows[0]
      .id as string;
    const routes = [
      "/t/demo/incidents",
      `/t/demo/incidents/${incidentId}`,
      `/t/demo/incidents/${incidentId}/nis2`,
      `/t/demo/incidents/${incidentId}/milestones/${milestone ?? incidentId}/complete`,
      `/t/demo/incidents/${incidentId}/exports`,
      `/t/demo/incidents/${incidentId}/evidence/${evidenceId}/delete`,
      "/t/demo/webhooks",
      `/t/demo/webhooks/${webhookId}/active`,
      `/t/demo/webhooks/${webhookId}/test`,
      "/t/demo/members",
      `/t/demo/members/invitations/${userId}/revoke`,
      `/invitations/${userId}/decline`,
      `/t/demo/members/${userId}/role`,
      "/t/demo/tokens",
      "/t/demo/audit/verify",
    ];
    const FIELDS = [
      "title",
      "severity",
      "status",
      "description",
      "root_cause",
      "lessons_learned",
      "enabled",
      "notes",
      "url",
      "actions",
      "active",
      "email",
      "role",
      "name",
      "expires_on",
    ];
    const form = fc.array(fc.tuple(fc.constantFrom(...FIELDS), nasty), { minLength: 1, maxLength: 6 });
    const request = fc.tuple(fc.constantFrom(...routes), form, fc.boolean());
    await fc.assert(
      fc.asyncProperty(fc.array(request, { minLength: BATCH, maxLength: BATCH }), async (requests) => {
        await batch(
          requests.map(([route, fields, htmx]) => {
            const body = new URLSearchParams({ _csrf: csrf });
            for (const [name, value] of fields) body.append(name, value.replace(/[\uD800-\uDFFF]/g, "x"));
            return [
              route,
              {
                method: "POST",
                body,
                headers: {
                  Cookie: admin,
                  Origin: web.url,
                  "Content-Type": "application/x-www-form-urlencoded",
                  ...(htmx ? { "HX-Request": "true" } : {}),
                },
              },
            ];
          }),
        );
      }),
      { seed: SEED + 3, numRuns: Math.ceil(RUNS / 2), endOnFailure: true },
    );
  });
});
