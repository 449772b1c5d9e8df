/**
 * Issue #12, part 2: who acted through which credential, and reads that matter are recorded.
 * - entries made with an API token name the token (id, and its name as it was then) over
 *   GraphQL, the evidence API, the Audit Log page and the reporting view;
 * - every evidence download is recorded exactly once (`evidence.downloaded`), also one the client
 *   aborts; HEAD and refused downloads record nothing;
 * - proofs handed out over GraphQL are recorded (`audit_log.proof_requested`);
 * - exports of the Audit Log are recorded (`audit_log.exported`, with filters and row count),
 *   CSV cells cannot run as formulas, JSON Lines keep exact values;
 * - a visitor cannot make the recording functions write another action, tenant or resource;
 * - changes by a worker job name the job.
 */
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { parse } from "csv-parse/sync";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { asUser, createTestDatabase, type Ids, ids, servers, sqlState, type TestDatabase } from "../helpers/db.ts";
import { requireTools } from "../helpers/prerequisites.ts";
import { sealAll } from "../helpers/seal.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { runJobsOnce } from "../helpers/worker.ts";

interface Entry {
  id: string;
  action: string;
  actor_label: string;
  api_token_id: string | null;
  resource_type: string;
  resource_id: string | null;
  resource_label: string | null;
  incident_id: string | null;
  changes: Record<string, { new?: unknown; old?: unknown }>;
  request_id: string | null;
  user_agent: string | null;
  surface: string;
  ip: string | null;
}

describe.each(servers())("recorded reads on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let known: Ids;
  let owner: string;
  let token: string;
  let tokenId: string;
  let incidentId: string;
  let evidenceId: string;
  const file = Buffer.alloc(2 * 1024 * 1024 + 77, 7); // three chunks

  const entries = async (where: string, params: unknown[] = []) =>
    (
      await t.superuser.query<Entry>(
        `select id::text, action, actor_label, api_token_id, resource_type, resource_id, resource_label, incident_id,
                changes, request_id, user_agent, surface, host(ip) as ip
         from app_public.audit_log where tenant_id = $1 and ${where} order by audit_log.id`,
        [known.tenants.demo, ...params],
      )
    ).rows;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    known = await ids(t);
    web = await startTestServer(t, { maxUploadBytes: 8 * 1024 * 1024 });
    owner = await web.signIn("owner@demo.test");
    const created = await web.gql<{ createApiToken: { result: { token: string; rowId: string } } }>(
      `mutation { createApiToken(input: { name: "SIEM export" }) { result { rowId token } } }`,
      { cookie: owner, tenant: "demo" },
    );
    token = created.data?.createApiToken.result.token ?? "";
    tokenId = created.data?.createApiToken.result.rowId ?? "";
    expect(token).toMatch(/^att_/);
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  it("entries made with an API token name the token, over GraphQL and the evidence API", async () => {
    const made = await web.gql<{ createIncident: { incident: { rowId: string } } }>(
      `mutation { createIncident(input: { incident: { title: "Token-made incident", severity: "high" } }) { incident { rowId } } }`,
      { token },
    );
    expect(made.errors).toBeUndefined();
    incidentId = made.data?.createIncident.incident.rowId ?? "";

    const form = new FormData();
    form.append("file", new Blob([new Uint8Array(file)]), "capture.pcap");
    const upload = await fetch(`${web.url}/api/incidents/${incidentId}/evidence`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}`, "User-Agent": "siem-agent/1.0" },
      body: form,
    });
    expect(upload.status).toBe(201);
    evidenceId = ((await upload.json()) as { evidence: Array<{ id: string }> }).evidence[0].id;

    const made2 = await entries("incident_id = $2 and action in ('incident.created', 'evidence.uploaded')", [
      incidentId,
    ]);
    expect(made2.map((e) => [e.action, e.actor_label, e.api_token_id, e.surface])).toEqual([
      ["incident.created", "owner@demo.test", tokenId, "graphql"],
      ["evidence.uploaded", "owner@demo.test", tokenId, "api"],
    ]);
    expect(made2[1].user_agent).toBe("siem-agent/1.0");

    // GraphQL shows the token's id and name; so does the reporting view.
    await sealAll(t.pools.owner);
    const read = await web.gql<{
      auditLogs: { nodes: Array<{ action: string; actorLabel: string; apiTokenId: string; apiTokenName: string }> };
    }>(
      `query($id: UUID!) { auditLogs(condition: { incidentId: $id }, orderBy: OLDEST_FIRST) { nodes { action actorLabel apiTokenId apiTokenName } } }`,
      { cookie: owner, tenant: "demo", variables: { id: incidentId } },
    );
    expect(read.errors).toBeUndefined();
    expect(read.data?.auditLogs.nodes.slice(0, 2)).toEqual([
      { action: "incident.created", actorLabel: "owner@demo.test", apiTokenId: tokenId, apiTokenName: "SIEM export" },
      { action: "evidence.uploaded", actorLabel: "owner@demo.test", apiTokenId: tokenId, apiTokenName: "SIEM export" },
    ]);
    const dba = await t.superuser.connect();
    let rows: Array<Record<string, unknown>>;
    try {
      await dba.query("begin");
      await dba.query(`set local role ${t.db.roles.reporting}`);
      rows = (
        await dba.query(
          "select action, api_token_id, api_token_name from reporting.audit_entries where incident_id = $1 order by entry_id",
          [incidentId],
        )
      ).rows;
    } finally {
      await dba.query("rollback");
      dba.release();
    }
    expect(rows.slice(0, 2)).toEqual([
      { action: "incident.created", api_token_id: tokenId, api_token_name: "SIEM export" },
      { action: "evidence.uploaded", api_token_id: tokenId, api_token_name: "SIEM export" },
    ]);
  });

  it("keeps the token's name as it was when the entry was made, also once renamed and revoked", async () => {
    // Only the owner role can rename a token (recorded as api_token.updated by `system`).
    await t.pools.owner.query("update app_public.api_tokens set name = 'SIEM (renamed)' where id = $1", [tokenId]);
    const later = await web.gql(
      `mutation($id: UUID!) { updateIncidentByRowId(input: { rowId: $id, patch: { severity: "critical" } }) { incident { rowId } } }`,
      { token, variables: { id: incidentId } },
    );
    expect(later.errors).toBeUndefined();
    const revoked = await web.gql(
      `mutation($id: UUID!) { revokeApiToken(input: { id: $id }) { result { revokedAt } } }`,
      {
        cookie: owner,
        tenant: "demo",
        variables: { id: tokenId },
      },
    );
    expect(revoked.errors).toBeUndefined();
    const read = await web.gql<{ auditLogs: { nodes: Array<{ action: string; apiTokenName: string }> } }>(
      `query($id: UUID!) { auditLogs(condition: { incidentId: $id }, orderBy: OLDEST_FIRST) { nodes { action apiTokenName } } }`,
      { cookie: owner, tenant: "demo", variables: { id: incidentId } },
    );
    expect(read.data?.auditLogs.nodes.map((n) => [n.action, n.apiTokenName])).toEqual([
      ["incident.created", "SIEM export"],
      ["evidence.uploaded", "SIEM export"],
      ["incident.updated", "SIEM (renamed)"],
    ]);
    // The page says who acted through which token.
    const page = await (
      await fetch(`${web.url}/t/demo/audit?action=incident.created`, { headers: { Cookie: owner } })
    ).text();
    expect(page).toContain('owner@demo.test <span class="via">via token ‘SIEM export’</span>');

    // A fresh token for the rest of the file.
    const created = await web.gql<{ createApiToken: { result: { token: string; rowId: string } } }>(
      `mutation { createApiToken(input: { name: "SIEM export" }) { result { rowId token } } }`,
      { cookie: owner, tenant: "demo" },
    );
    token = created.data?.createApiToken.result.token ?? "";
    tokenId = created.data?.createApiToken.result.rowId ?? "";
  });

  const downloadsOf = (id: string) => entries("action = 'evidence.downloaded' and resource_id = $2", [id]);

  it("records each evidence download once, with the token and request, before the first byte; HEAD records nothing", async () => {
    const head = await fetch(`${web.url}/api/evidence/${evidenceId}/download`, {
      method: "HEAD",
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(head.status).toBe(200);
    expect(await downloadsOf(evidenceId)).toEqual([]);

    const response = await fetch(`${web.url}/api/evidence/${evidenceId}/download`, {
      headers: { Authorization: `Bearer ${token}`, "User-Agent": "siem-agent/2.0" },
    });
    expect(response.status).toBe(200);
    expect(Buffer.from(await response.arrayBuffer()).equals(file)).toBe(true);
    const [entry, ...more] = await downloadsOf(evidenceId);
    expect(more).toEqual([]);
    expect(entry).toMatchObject({
      action: "evidence.downloaded",
      actor_label: "owner@demo.test",
      api_token_id: tokenId,
      resource_type: "evidence",
      resource_id: evidenceId,
      resource_label: "capture.pcap",
      incident_id: incidentId,
      request_id: response.headers.get("x-request-id"),
      user_agent: "siem-agent/2.0",
      surface: "api",
    });
    expect(entry.changes).toEqual({
      incident_id: { new: incidentId },
      filename: { new: "capture.pcap" },
      size_bytes: { new: file.length },
      sha256: { new: response.headers.get("x-content-sha256") },
    });

    // From the incident page with a session: recorded the same way, as the web surface.
    const viewer = await web.signIn("viewer@demo.test");
    const page = await fetch(`${web.url}/t/demo/incidents/${incidentId}/evidence/${evidenceId}/download`, {
      headers: { Cookie: viewer },
    });
    expect(page.status).toBe(200);
    await page.arrayBuffer();
    expect((await downloadsOf(evidenceId)).map((e) => [e.actor_label, e.api_token_id, e.surface])).toEqual([
      ["owner@demo.test", tokenId, "api"],
      ["viewer@demo.test", null, "web"],
    ]);

    // Refused: another tenant's member, a file of another incident, an unknown file.
    const basic = await web.signIn("owner@basic.test");
    const refused = await fetch(`${web.url}/api/evidence/${evidenceId}/download?tenant=basic`, {
      headers: { Cookie: basic },
    });
    expect(refused.status).toBe(404);
    expect(await downloadsOf(evidenceId)).toHaveLength(2);
  });

  it("records a download that the client aborts after the first bytes exactly once", async () => {
    const before = (await downloadsOf(evidenceId)).length;
    const { hostname, port } = new URL(web.url);
    const aborted = async () => {
      const socket = net.connect(Number(port), hostname);
      await new Promise((r) => socket.once("connect", r));
      socket.write(
        `GET /api/evidence/${evidenceId}/download HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\n\r\n`,
      );
      let received = 0;
      await new Promise<void>((resolve) => {
        socket.on("data", (chunk: Buffer) => {
          received += chunk.length;
          if (received > 64 * 1024) {
            socket.destroy(); // gone after the first bytes of a 2 MiB file
            resolve();
          }
        });
        socket.on("close", () => resolve());
      });
      expect(received).toBeLessThan(file.length);
    };
    await Promise.all([aborted(), aborted(), aborted()]);
    // Nothing more is recorded later (no second entry when the stream is torn down).
    await new Promise((r) => setTimeout(r, 300));
    const after = await downloadsOf(evidenceId);
    expect(after.length).toBe(before + 3);
    expect(new Set(after.slice(before).map((e) => e.request_id)).size).toBe(3);
  });

  it("records every proof handed out over GraphQL", async () => {
    await sealAll(t.pools.owner);
    const cps = await web.gql<{ auditCheckpoints: { nodes: Array<{ treeSize: string }> } }>(
      "{ auditCheckpoints(last: 2) { nodes { treeSize } } }",
      { token },
    );
    const sizes = cps.data?.auditCheckpoints.nodes.map((n) => n.treeSize) ?? [];
    expect(sizes.length).toBe(2);
    const before = (await entries("action = 'audit_log.proof_requested'")).length;
    const proof = await web.gql<{
      auditLogEntry: { inclusionProof: { treeSize: string; proof: string[]; rootHash: string } };
      auditConsistencyProof: { proof: string[] };
    }>(
      `query($from: BigInt, $to: BigInt) {
         auditLogEntry(seq: "3") { seq inclusionProof { treeSize rootHash proof } }
         auditConsistencyProof(fromSize: $from, toSize: $to) { proof }
       }`,
      { token, variables: { from: sizes[0], to: sizes[1] } },
    );
    expect(proof.errors).toBeUndefined();
    expect(proof.data?.auditLogEntry.inclusionProof.proof.length).toBeGreaterThan(0);
    const recorded = (await entries("action = 'audit_log.proof_requested'")).slice(before);
    expect(recorded.map((e) => [e.resource_type, e.actor_label, e.api_token_id, e.surface])).toEqual([
      ["audit_log", "owner@demo.test", tokenId, "graphql"],
      ["audit_log", "owner@demo.test", tokenId, "graphql"],
    ]);
    const byProof = Object.fromEntries(recorded.map((e) => [String(e.changes.proof.new), e]));
    expect(byProof.inclusion.changes).toEqual({
      proof: { new: "inclusion" },
      seq: { new: 3 },
      tree_size: { new: Number(proof.data?.auditLogEntry.inclusionProof.treeSize) },
    });
    expect(byProof.inclusion.resource_label).toBe(
      `Inclusion proof · entry 3 in tree size ${proof.data?.auditLogEntry.inclusionProof.treeSize}`,
    );
    expect(byProof.consistency.changes).toEqual({
      proof: { new: "consistency" },
      from_size: { new: Number(sizes[0]) },
      to_size: { new: Number(sizes[1]) },
    });
    // Reading entries without their proofs records nothing.
    await web.gql(`{ auditLogEntry(seq: "3") { seq leafHash } }`, { token });
    expect((await entries("action = 'audit_log.proof_requested'")).length).toBe(before + 2);
  });

  it("records an export with its filters and size; CSV cells cannot run as formulas, JSON Lines are exact", async () => {
    const title = '=HYPERLINK("https://evil.example","click")';
    const made = await web.gql(
      `mutation($t: String!) { createIncident(input: { incident: { title: $t } }) { incident { rowId } } }`,
      {
        cookie: owner,
        tenant: "demo",
        variables: { t: title },
      },
    );
    expect(made.errors).toBeUndefined();
    const before = (await entries("action = 'audit_log.exported'")).length;
    const expected = (await entries("action = 'incident.created'")).reverse(); // newest first

    const csv = await fetch(`${web.url}/t/demo/audit/export.csv?action=incident.created`, {
      headers: { Cookie: owner, "User-Agent": "browser/1" },
    });
    expect(csv.status).toBe(200);
    expect(csv.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(csv.headers.get("content-disposition")).toMatch(/^attachment; filename="audit-log-demo-.*\.csv"/);
    const rows = parse(await csv.text(), { bom: true, columns: true }) as Array<Record<string, string>>;
    expect(rows.map((r) => r.entry_id)).toEqual(expected.map((e) => e.id));
    expect(rows.every((r) => r.action === "incident.created")).toBe(true);
    expect(rows[0].resource_label).toBe(`'${title}`);
    expect(rows[0].actor).toBe("owner@demo.test");
    const byToken = rows.find((r) => r.resource_label === "Token-made incident");
    expect(byToken).toMatchObject({ api_token_name: "SIEM export", surface: "graphql" });

    const jsonl = await fetch(`${web.url}/t/demo/audit/export.jsonl?action=incident.created`, {
      headers: { Cookie: owner },
    });
    expect(jsonl.headers.get("content-type")).toBe("application/x-ndjson; charset=utf-8");
    const lines = (await jsonl.text())
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => String(l.entry_id))).toEqual(expected.map((e) => e.id));
    expect(lines[0]).toMatchObject({ resource_label: title, action: "incident.created", sealed: false });
    expect(Object.keys(lines[0])).toEqual([
      "seq",
      "entry_id",
      "time",
      "actor",
      "api_token_id",
      "api_token_name",
      "action",
      "resource_type",
      "resource_id",
      "resource_label",
      "incident_id",
      "changes",
      "ip",
      "user_agent",
      "request_id",
      "surface",
      "leaf_hash",
      "sealed",
    ]);

    const recorded = (await entries("action = 'audit_log.exported'")).slice(before);
    expect(recorded.map((e) => [e.actor_label, e.surface, e.resource_label, e.changes])).toEqual([
      [
        "owner@demo.test",
        "web",
        "Audit log export (CSV)",
        { format: { new: "csv" }, filters: { new: { actions: ["incident.created"] } }, entries: { new: rows.length } },
      ],
      [
        "owner@demo.test",
        "web",
        "Audit log export (JSON Lines)",
        {
          format: { new: "jsonl" },
          filters: { new: { actions: ["incident.created"] } },
          entries: { new: lines.length },
        },
      ],
    ]);
    expect(recorded[0].user_agent).toBe("browser/1");
    expect(recorded[0].request_id).toBe(csv.headers.get("x-request-id"));

    // HEAD records nothing; members and a plan without the audit log are refused (nothing recorded).
    expect(
      (await fetch(`${web.url}/t/demo/audit/export.csv`, { method: "HEAD", headers: { Cookie: owner } })).status,
    ).toBe(200);
    const member = await web.signIn("member@demo.test");
    expect((await fetch(`${web.url}/t/demo/audit/export.csv`, { headers: { Cookie: member } })).status).toBe(403);
    const basic = await web.signIn("owner@basic.test");
    expect((await fetch(`${web.url}/t/basic/audit/export.jsonl`, { headers: { Cookie: basic } })).status).toBe(403);
    expect((await entries("action = 'audit_log.exported'")).length).toBe(before + 2);
  });

  it("lets no visitor record a read for another action, tenant or resource through the SQL functions", async () => {
    const before = await t.superuser.query<{ n: number }>("select count(*)::int as n from app_public.audit_log");
    const basicEvidence = (
      await t.superuser.query(
        "select e.id from app_public.evidence e join app_public.tenants t on t.id = e.tenant_id where t.slug = 'basic' limit 1",
      )
    ).rows[0]?.id as string | undefined;
    // A member may not record an export; no one may call the proof recorder or write the access tables.
    expect(
      await sqlState(
        asUser(t, "member@demo.test", "demo", (c) =>
          c.query("select app_hidden.record_audit_log_export('csv', '{}', 1)"),
        ),
      ),
    ).toBe("42501");
    for (const sql of [
      `select app_private.record_audit_proof_request('${known.tenants.basic}', 'inclusion', 1, 1, null, null)`,
      `insert into app_private.evidence_downloads (tenant_id, evidence_id, incident_id, filename, size_bytes, sha256)
         values ('${known.tenants.basic}', gen_random_uuid(), gen_random_uuid(), 'x', 1, 'x')`,
      `insert into app_private.audit_log_reads (tenant_id, kind, label, format, filters, entries)
         values ('${known.tenants.demo}', 'exported', 'forged', 'csv', '{}', 1)`,
    ]) {
      expect(await sqlState(asUser(t, "owner@demo.test", "demo", (c) => c.query(sql))), sql).toBe("42501");
    }
    // The export recorder takes no action, tenant or label: only a format it knows and an object.
    for (const args of ["'xlsx', '{}', 1", "'csv', '[1]', 1", "'csv', '{}', -1"]) {
      expect(
        await sqlState(
          asUser(t, "owner@demo.test", "demo", (c) => c.query(`select app_hidden.record_audit_log_export(${args})`)),
        ),
      ).toBe("22023");
    }
    // The download recorder finds files of the current tenant only.
    if (basicEvidence) {
      expect(
        await sqlState(
          asUser(t, "owner@demo.test", "demo", (c) =>
            c.query("select * from app_hidden.start_evidence_download($1)", [basicEvidence]),
          ),
        ),
      ).toBe("P0002");
    }
    expect(
      await sqlState(
        asUser(t, "owner@demo.test", "basic", (c) =>
          c.query("select * from app_hidden.start_evidence_download($1)", [evidenceId]),
        ),
      ),
    ).toBe("P0002");
    // Even the owner of tenant basic records into basic only, and only what it reads.
    await asUser(t, "owner@demo.test", "demo", (c) =>
      c.query("select * from app_hidden.start_evidence_download($1, $2)", [evidenceId, incidentId]),
    );
    const after = await t.superuser.query<{ tenant_id: string; action: string; resource_id: string }>(
      "select tenant_id, action, resource_id from app_public.audit_log order by id desc limit 2",
    );
    expect(after.rows[0]).toEqual({
      tenant_id: known.tenants.demo,
      action: "evidence.downloaded",
      resource_id: evidenceId,
    });
    const total = await t.superuser.query<{ n: number }>("select count(*)::int as n from app_public.audit_log");
    expect(total.rows[0].n).toBe(before.rows[0].n + 1);
    // The access tables are append-only, also for the owner role.
    for (const sql of [
      "update app_private.evidence_downloads set filename = 'x'",
      "delete from app_private.audit_log_reads",
    ]) {
      expect(await sqlState(t.pools.owner.query(sql)), sql).toBe("42501");
    }
  });

  it("records which worker job made a change", async () => {
    const requested = await web.gql<{ createExport: { export: { rowId: string } } }>(
      `mutation($id: UUID!) { createExport(input: { export: { incidentId: $id } }) { export { rowId } } }`,
      { cookie: owner, tenant: "demo", variables: { id: incidentId } },
    );
    const exportId = requested.data?.createExport.export.rowId ?? "";
    expect(exportId).not.toBe("");
    await sealAll(t.pools.owner);
    await runJobsOnce(t.pools.owner);
    const jobEntries = await entries("resource_id = $2 and action = 'export.completed'", [exportId]);
    expect(jobEntries).toHaveLength(1);
    expect(jobEntries[0]).toMatchObject({ actor_label: "system", surface: "worker" });
    expect(jobEntries[0].request_id).toMatch(/^job:build_evidence_pack:\d+$/);
    expect(jobEntries[0].user_agent).toMatch(/^graphile-worker build_evidence_pack job \d+ \(attempt 1 of 5\)$/);
    const jobId = jobEntries[0].request_id?.split(":")[2];
    expect(jobEntries[0].user_agent).toContain(`job ${jobId} `);

    // Pack downloads are recorded like evidence downloads (once, when they start), with the token.
    const pack = await fetch(`${web.url}/api/exports/${exportId}/pack.zip`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(pack.status).toBe(200);
    await pack.arrayBuffer();
    const downloaded = await entries("resource_id = $2 and action = 'export.downloaded'", [exportId]);
    expect(downloaded.map((e) => [e.api_token_id, e.surface])).toEqual([[tokenId, "api"]]);

    // The pack's PDF report names the token of the entries made with one.
    const pdf = await fetch(`${web.url}/api/exports/${exportId}/report.pdf`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(pdf.status).toBe(200);
    requireTools("pdftotext");
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-reads-"));
    try {
      await fs.writeFile(path.join(dir, "report.pdf"), Buffer.from(await pdf.arrayBuffer()));
      const text = execFileSync("pdftotext", ["-layout", path.join(dir, "report.pdf"), "-"])
        .toString()
        .replace(/\s+/g, " ");
      expect(text).toContain("via token ‘SIEM export’");
      expect(text).toContain("via token ‘SIEM (renamed)’");
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
