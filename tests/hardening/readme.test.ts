/**
 * The README's GraphQL queries and curl commands, run as written (only the host, the token and
 * the ids that the README shows as placeholders are filled in), and every query field the README
 * names. A documented example that fails is a bug.
 */
import { execFile } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const readme = await fs.readFile(path.resolve(import.meta.dirname, "../../README.md"), "utf8");
const blocks = (lang: string) =>
  [...readme.matchAll(new RegExp(`\`\`\`${lang}\\n([\\s\\S]*?)\`\`\``, "g"))].map((m) => m[1]);
const graphqlBlocks = blocks("graphql");
const shellBlocks = blocks("sh").filter((b) => b.includes("curl "));

/** Runs a README shell block (curl) with the placeholders filled in; returns its output. */
async function runShell(block: string, fill: Record<string, string>, cwd: string): Promise<string> {
  let script = block;
  for (const [placeholder, value] of Object.entries(fill)) script = script.split(placeholder).join(value);
  // Asynchronously: the server answering curl runs in this process.
  const { stdout } = await promisify(execFile)("sh", ["-e", "-c", script], { cwd, encoding: "utf8", timeout: 30_000 });
  return stdout;
}

describe.each(servers())("README examples on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let owner: string;
  let tmp: string;
  let token = "";
  let tokenRowId = "";

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
    owner = await web.signIn("owner@demo.test");
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "attest-readme-"));
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
    if (tmp) await fs.rm(tmp, { recursive: true, force: true });
  });

  it("has the examples this test runs", () => {
    expect(graphqlBlocks.length).toBeGreaterThanOrEqual(4);
    expect(shellBlocks.length).toBeGreaterThanOrEqual(2);
  });

  it("runs every GraphQL block of the README as written, as owner@demo.test", async () => {
    let endCursor: string | null = null;
    for (const query of graphqlBlocks) {
      const variables = /\$after\b/.test(query) ? { after: endCursor } : undefined;
      const result = await web.gql<Record<string, unknown>>(query, { cookie: owner, tenant: "demo", variables });
      expect(result.errors, query).toBeUndefined();
      expect(result.status, query).toBe(200);
      const logs = result.data?.auditLogs as { pageInfo?: { endCursor: string | null } } | undefined;
      if (logs?.pageInfo?.endCursor && endCursor === null) endCursor = logs.pageInfo.endCursor;
      const created = result.data?.createApiToken as { result?: { token: string; rowId: string } } | undefined;
      if (created?.result) {
        token = created.result.token;
        tokenRowId = created.result.rowId;
      }
    }
    expect(endCursor).not.toBeNull();
    expect(token).toMatch(/^att_/);
  });

  it("gives members an empty audit log and the Basic plan PLAN_REQUIRED, as the README says", async () => {
    const [first] = graphqlBlocks;
    const member = await web.signIn("member@demo.test");
    const asMember = await web.gql<{ auditLogs: { totalCount: number } }>(first, { cookie: member, tenant: "demo" });
    expect(asMember.errors).toBeUndefined();
    expect(asMember.data?.auditLogs.totalCount).toBe(0);
    const basic = await web.signIn("owner@basic.test");
    const asBasic = await web.gql(first, { cookie: basic, tenant: "basic" });
    expect(asBasic.errors?.map((e) => e.extensions?.code)).toEqual(["PLAN_REQUIRED"]);
  });

  it("runs the README's curl commands (GraphQL with a token, upload and download) as written", async () => {
    expect(token).toMatch(/^att_/);
    const fill = { "http://127.0.0.1:3000": web.url, "att_…": token };
    const graphqlCurl = shellBlocks.find((b) => b.includes("/graphql"));
    expect(graphqlCurl).toBeDefined();
    const answer = JSON.parse(await runShell(graphqlCurl ?? "", fill, tmp)) as {
      data?: { auditLogs: { nodes: unknown[] } };
      errors?: unknown;
    };
    expect(answer.errors).toBeUndefined();
    expect(answer.data?.auditLogs.nodes.length).toBeGreaterThan(0);

    const evidenceCurl = shellBlocks.find((b) => b.includes("/evidence"));
    expect(evidenceCurl).toBeDefined();
    const [uploadCommand, downloadCommand] = (evidenceCurl ?? "").split(/\n(?=curl )/);
    const incident = (
      await t.superuser.query(
        "select i.id from app_public.incidents i join app_public.tenants t on t.id = i.tenant_id where t.slug = 'demo' and i.deleted_at is null limit 1",
      )
    ).rows[0].id as string;
    await fs.writeFile(path.join(tmp, "firewall.log"), "Jan 12 03:14:15 DROP src=203.0.113.9\n");
    await fs.writeFile(path.join(tmp, "capture.pcap"), Buffer.from([0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]));
    const uploaded = JSON.parse(await runShell(uploadCommand, { ...fill, "<incident rowId>": incident }, tmp)) as {
      evidence: Array<{ id: string; filename: string }>;
    };
    expect(uploaded.evidence.map((e) => e.filename)).toEqual(["firewall.log", "capture.pcap"]);
    const downloads = path.join(tmp, "downloads");
    await fs.mkdir(downloads);
    await runShell(downloadCommand, { ...fill, "<evidence rowId>": uploaded.evidence[0].id }, downloads);
    expect(await fs.readFile(path.join(downloads, "firewall.log"), "utf8")).toBe(
      "Jan 12 03:14:15 DROP src=203.0.113.9\n",
    );
  });

  it("revokes the token with the README's one-line mutation", async () => {
    const line = /`(mutation \{ revokeApiToken[^`]*)`/.exec(readme)?.[1];
    expect(line).toBeDefined();
    const result = await web.gql<{ revokeApiToken: { result: { revokedAt: string } } }>(
      (line ?? "").replace("<rowId>", tokenRowId),
      { cookie: owner, tenant: "demo" },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?.revokeApiToken.result.revokedAt).toBeTruthy();
  });

  it("answers every query field the README names, for owners and viewers, without an error", async () => {
    const webhook = (await t.superuser.query("select id from app_public.webhooks limit 1")).rows[0].id as string;
    const fields = [
      "currentUser { email }",
      "currentTenant { features myRole }",
      "incidents(first: 2) { nodes { rowId auditTrail { totalCount nodes { seq action } } } }",
      "evidences { nodes { rowId filename } }",
      "nis2Milestones { nodes { rowId } }",
      "exports { nodes { rowId status } }",
      "webhooks { nodes { rowId url } }",
      "memberships { nodes { role } }",
      "currentTenant { invitations { nodes { email state isOpen invitedByEmail } } }",
      "myInvitations { nodes { rowId tenantName role } }",
      "mySignIns(first: 5) { nodes { kind occurredAt attempts } }",
      `webhookDeliveries(webhookId: "${webhook}") { nodes { status } }`,
      "currentChainVerification { nodes { valid } }",
      "signingKeys { nodes { fingerprint } }",
      "auditLogs(first: 1) { nodes { seq } }",
    ];
    const viewer = await web.signIn("viewer@demo.test");
    for (const cookie of [owner, viewer]) {
      for (const field of fields) {
        const result = await web.gql(`{ ${field} }`, { cookie, tenant: "demo" });
        expect(result.errors, field).toBeUndefined();
      }
    }
  });

  it("answers GET /healthz as the README says", async () => {
    const response = await fetch(`${web.url}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ok", database: "reachable" });
    expect(response.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });
});
