/**
 * An audit entry's permalink (/t/:slug/audit/:seq) and pending address (/t/:slug/audit/e/:id):
 * the same access rules as the Audit Log page, 404 for entries that do not exist (or belong to
 * another tenant), 400 for junk, the pending → sealed redirect, the entry as people read it, and a
 * proof that checks out with the page's own "check this yourself" script and leaf download.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatInZone } from "../../src/web/pages/audit-zone.ts";
import { createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { sealAll } from "../helpers/seal.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

const run = promisify(execFile);

/** The text of an element with this id (HTML entities decoded), or null. */
function textOf(html: string, id: string): string | null {
  const m = html.match(new RegExp(`<(pre|code)[^>]* id="${id}"[^>]*>([\\s\\S]*?)</(pre|code)>`));
  if (!m) return null;
  return m[2]
    .replace(/<[^>]+>/g, "")
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&amp;/g, "&");
}

describe.each(servers())("audit entry permalink on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let owner: string;
  let admin: string;
  let demo: string;
  let basic: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
    owner = await web.signIn("owner@demo.test");
    admin = await web.signIn("admin@demo.test");
    const known = await ids(t);
    demo = known.tenants.demo;
    basic = known.tenants.basic;
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
  });

  const get = (p: string, cookie?: string, headers: Record<string, string> = {}) =>
    fetch(`${web.url}${p}`, { redirect: "manual", headers: { ...(cookie ? { Cookie: cookie } : {}), ...headers } });
  const one = async <T>(sql: string, params: unknown[] = []) => (await t.superuser.query(sql, params)).rows[0] as T;
  const lastSeq = async (tenant = demo) =>
    Number(
      (
        await one<{ n: string }>("select max(seq)::text as n from app_hidden.audit_leaves where tenant_id = $1", [
          tenant,
        ])
      ).n,
    );

  it("shows a sealed entry with its changes in words, its state and its inclusion proof", async () => {
    const entry = await one<{ seq: string; id: string; resource_label: string }>(
      `select l.seq::text, e.id::text, e.resource_label from app_public.audit_log e
       join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
       where e.tenant_id = $1 and e.action = 'incident.updated' and e.changes ? 'severity'
       order by l.seq desc limit 1`,
      [demo],
    );
    const response = await get(`/t/demo/audit/${entry.seq}`, owner);
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain("Incident updated");
    expect(html).toContain(`Entry #${entry.seq}`);
    expect(html).toContain("Sealed</span> at position");
    expect(html).toMatch(
      /<th scope="row">Severity<\/th>\s*<td>\s*<span class="old v-enum">(Low|Medium|High|Critical)<\/span>/,
    );
    // The proof is the database's, value for value.
    const proof = await one<{
      leaf_hash: string;
      root_hash: string;
      tree_size: string;
      proof: string[];
      checkpoint: string;
    }>(
      "select leaf_hash, root_hash, tree_size::text, proof, checkpoint from app_private.inclusion_proof($1, $2, null)",
      [demo, entry.seq],
    );
    expect(textOf(html, "proof-leaf")).toBe(proof.leaf_hash);
    expect(textOf(html, "proof-root")).toBe(proof.root_hash);
    expect(textOf(html, "proof-size")).toBe(proof.tree_size);
    expect(textOf(html, "checkpoint-note")).toBe(proof.checkpoint);
    for (const h of proof.proof) expect(html).toContain(`<code class="hash">${h}</code>`);

    // "How to check this yourself", run as the page shows it.
    const script = textOf(html, "check-script");
    expect(script).toBeTruthy();
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-check-"));
    try {
      await fs.writeFile(path.join(dir, "check.mjs"), script ?? "");
      const { stdout } = await run(process.execPath, [path.join(dir, "check.mjs")]);
      expect(stdout.trim()).toBe("included");
      // The same script with a different root says so.
      await fs.writeFile(path.join(dir, "bad.mjs"), (script ?? "").replace(proof.root_hash, "00".repeat(32)));
      expect((await run(process.execPath, [path.join(dir, "bad.mjs")])).stdout.trim()).toBe("NOT included");
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }

    // The leaf download hashes to the leaf hash: SHA-256(0x00 || leaf).
    const leaf = await get(`/t/demo/audit/${entry.seq}/leaf`, owner);
    expect(leaf.status).toBe(200);
    expect(leaf.headers.get("content-disposition")).toBe(`attachment; filename="leaf-${entry.seq}.txt"`);
    expect(leaf.headers.get("content-type")).toBe("application/octet-stream");
    const bytes = Buffer.from(await leaf.arrayBuffer());
    expect(bytes.toString("utf8")).toMatch(new RegExp(`^attest-audit-entry/2\\nseq ${entry.seq}\\n`));
    expect(
      createHash("sha256")
        .update(Buffer.concat([Buffer.from([0]), bytes]))
        .digest("hex"),
    ).toBe(proof.leaf_hash);
  });

  it("names users instead of their ids; the ids are only in the raw JSON", async () => {
    const entry = await one<{ seq: string; created_by: string }>(
      `select l.seq::text, e.changes->'created_by'->>'new' as created_by from app_public.audit_log e
       join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
       where e.tenant_id = $1 and e.action = 'incident.created' and e.changes->'created_by'->>'new' is not null
       order by l.seq desc limit 1`,
      [demo],
    );
    const user = await one<{ name: string; email: string }>("select name, email from app_public.users where id = $1", [
      entry.created_by,
    ]);
    const html = await (await get(`/t/demo/audit/${entry.seq}`, owner)).text();
    expect(html).toContain(`<th scope="row">Created by</th>`);
    expect(html).toContain(`${user.name} (${user.email})`);
    const raw = textOf(html, `raw-[0-9]+`) ?? "";
    expect(JSON.parse(raw).changes.created_by.new).toBe(entry.created_by);
    expect(html.replace(/<pre id="raw-[\s\S]*?<\/pre>/, "")).not.toContain(entry.created_by);
  });

  it("applies the Audit Log's access rules: sign-in, owners and admins, the plan", async () => {
    const seq = await lastSeq();
    const signedOut = await get(`/t/demo/audit/${seq}`);
    expect(signedOut.status).toBe(302);
    expect(signedOut.headers.get("location")).toBe(`/login?next=${encodeURIComponent(`/t/demo/audit/${seq}`)}`);
    expect((await get(`/t/demo/audit/${seq}`, admin)).status).toBe(200);
    const member = await get(`/t/demo/audit/${seq}`, await web.signIn("member@demo.test"));
    expect(member.status).toBe(403);
    expect(await member.text()).toContain("Only owners and admins can see the audit log");
    const viewerLeaf = await get(`/t/demo/audit/${seq}/leaf`, await web.signIn("viewer@demo.test"));
    expect(viewerLeaf.status).toBe(403);
    const basicSeq = await lastSeq(basic);
    const upgrade = await get(`/t/basic/audit/${basicSeq}`, await web.signIn("owner@basic.test"));
    expect(upgrade.status).toBe(403);
    expect(await upgrade.text()).toContain("not included in the Basic plan");
  });

  it("answers unknown entries with 404 and junk with 400, in words", async () => {
    const seq = await lastSeq();
    for (const p of [`/t/demo/audit/${seq + 1000}`, "/t/demo/audit/0", `/t/demo/audit/${"9".repeat(30)}`]) {
      const response = await get(p, owner);
      expect(response.status, p).toBe(404);
      expect(await response.text(), p).toContain("There is no entry");
    }
    expect((await get(`/t/demo/audit/${seq + 1000}/leaf`, owner)).status).toBe(404);
    for (const p of [
      "/t/demo/audit/abc",
      "/t/demo/audit/1.5",
      "/t/demo/audit/-1",
      "/t/demo/audit/%20",
      "/t/demo/audit/e/x",
    ]) {
      const response = await get(p, owner);
      expect(response.status, p).toBe(400);
      const body = await response.text();
      expect(body, p).toContain("whole number");
      expect(body, p).not.toMatch(/at [\w.]+ \(|stack/i);
    }
    // An entry of another tenant is not found, not forbidden.
    const foreign = await one<{ id: string }>(
      "select id::text from app_public.audit_log where tenant_id = $1 limit 1",
      [basic],
    );
    expect((await get(`/t/demo/audit/e/${foreign.id}`, owner)).status).toBe(404);
  });

  it("shows a pending entry at its capture number, then sends it to its position once sealed", async () => {
    await t.superuser.query(
      "update app_public.incidents set severity = case severity when 'low' then 'medium' else 'low' end where id = (select id from app_public.incidents where tenant_id = $1 and deleted_at is null order by created_at limit 1)",
      [demo],
    );
    const pending = await one<{ id: string }>(
      `select e.id::text from app_public.audit_log e
       where e.tenant_id = $1 and not exists (select 1 from app_hidden.audit_leaves l where l.tenant_id = e.tenant_id and l.entry_id = e.id)
       order by e.id desc limit 1`,
      [demo],
    );
    const list = await (await get("/t/demo/audit", owner)).text();
    expect(list).toContain(`href="/t/demo/audit/e/${pending.id}"`);
    const page = await get(`/t/demo/audit/e/${pending.id}`, owner);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("Pending</span>");
    expect(html).not.toContain('id="proof"');
    expect(html).toContain(`hx-get="/t/demo/audit/e/${pending.id}" hx-trigger="every 2s"`);
    const poll = await get(`/t/demo/audit/e/${pending.id}`, owner, { "HX-Request": "true" });
    expect(poll.status).toBe(204);
    expect(poll.headers.get("hx-location")).toBeNull();

    await sealAll(t.pools.owner);
    const seq = await one<{ seq: string }>(
      "select seq::text from app_hidden.audit_leaves where tenant_id = $1 and entry_id = $2",
      [demo, pending.id],
    );
    const sealed = await get(`/t/demo/audit/e/${pending.id}`, owner);
    expect(sealed.status).toBe(302);
    expect(sealed.headers.get("location")).toBe(`/t/demo/audit/${seq.seq}`);
    const polled = await get(`/t/demo/audit/e/${pending.id}`, owner, { "HX-Request": "true" });
    expect(polled.status).toBe(204);
    expect(polled.headers.get("hx-location")).toBe(`/t/demo/audit/${seq.seq}`);
    const permalink = await (await get(`/t/demo/audit/${seq.seq}`, owner)).text();
    expect(permalink).toContain('id="proof"');
    expect(permalink).toMatch(/· by<\/span>\s*<span class="muted">System<\/span>/);
  });

  it("links every row of the list to its permalink, with the details in words when opened", async () => {
    const html = await (await get("/t/demo/audit?action=membership.updated", owner)).text();
    const seqs = [...html.matchAll(/href="\/t\/demo\/audit\/(\d+)"/g)].map((m) => m[1]);
    expect(seqs.length).toBeGreaterThan(0);
    const details = [...html.matchAll(/hx-get="(\/t\/demo\/audit\/e\/\d+\/detail)"/g)].map((m) => m[1]);
    expect(details.length).toBe(seqs.length);
    const detail = await (await get(details[0], owner, { "HX-Request": "true" })).text();
    expect(detail).toContain("Membership updated");
    expect(detail).toMatch(
      /<th scope="row">Role<\/th>\s*<td>\s*<span class="old v-enum">(Owner|Admin|Member|Viewer)<\/span>/,
    );
    expect(detail).toContain("Show raw JSON");
    expect(detail).toContain(`href="/t/demo/audit/${seqs[0]}"`);
  });

  it("shows an entry's times in the Audit Log's time zone, labelled, on its page and in the list's details", async () => {
    const entry = await one<{ seq: string; id: string; at: string; sealed: string }>(
      `select l.seq::text, e.id::text,
              to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as at,
              to_char(l.sealed_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as sealed
       from app_public.audit_log e
       join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
       where e.tenant_id = $1 and e.action = 'incident.updated' order by l.seq desc limit 1`,
      [demo],
    );
    const when = (html: string, zone: string) =>
      expect(html).toContain(
        `<time datetime="${entry.at}" data-local="1" title="${entry.at} (UTC)">${formatInZone(entry.at, zone)}</time> <span class="muted small">${zone}</span>`,
      );
    const permalink = `/t/demo/audit/${entry.seq}`;

    // Named in the address: kept by its links; the page says so and offers UTC.
    const tokyo = await (await get(`${permalink}?tz=Asia/Tokyo`, owner)).text();
    expect(tokyo).toContain("Times are in <strong>Asia/Tokyo (UTC+09:00)</strong>");
    when(tokyo, "Asia/Tokyo");
    expect(tokyo).toContain(`title="${entry.sealed} (UTC)">${formatInZone(entry.sealed, "Asia/Tokyo")}</time>.`);
    expect(tokyo).toContain(`href="${permalink}?tz=UTC">Show in UTC</a>`);
    expect(tokyo).toContain('href="/t/demo/audit?tz=Asia%2FTokyo">Audit Log</a>');
    expect(tokyo).toContain(`href="${permalink}/leaf" download`);
    const utc = await (await get(`${permalink}?tz=UTC`, owner)).text();
    expect(utc).toContain("Times are in <strong>UTC</strong>");
    when(utc, "UTC");
    expect(utc).toContain(`href="${permalink}">Show in my time zone</a>`);

    // Otherwise the browser's zone (attest.js's cookie), else UTC; a zone nobody knows is not used.
    const berlin = await (await get(permalink, `${owner}; attest_tz=Europe%2FBerlin`)).text();
    expect(berlin).toMatch(/Times are in <strong>Europe\/Berlin \(UTC\+0[12]:00\)<\/strong>/);
    when(berlin, "Europe/Berlin");
    expect(berlin).toContain('href="/t/demo/audit">Audit Log</a>');
    when(await (await get(permalink, owner)).text(), "UTC");
    when(await (await get(`${permalink}?tz=Mars%2FOlympus`, owner)).text(), "UTC");

    // The list's details of the entry: in the list's zone, their permalink in it too.
    const list = await (await get("/t/demo/audit?action=incident.updated&tz=Asia%2FTokyo", owner)).text();
    expect(list).toContain(`hx-get="/t/demo/audit/e/${entry.id}/detail?tz=Asia%2FTokyo"`);
    expect(list).toContain(`href="${permalink}?tz=Asia%2FTokyo">Open this entry</a>`);
    const detail = await (
      await get(`/t/demo/audit/e/${entry.id}/detail?tz=Asia%2FTokyo`, owner, { "HX-Request": "true" })
    ).text();
    when(detail, "Asia/Tokyo");
    expect(detail).toContain(`href="${permalink}?tz=Asia%2FTokyo">Permalink and proof →</a>`);
    when(
      await (
        await get(`/t/demo/audit/e/${entry.id}/detail`, `${owner}; attest_tz=America%2FNew_York`, {
          "HX-Request": "true",
        })
      ).text(),
      "America/New_York",
    );
    // An entry's capture-number address sends to its position in the same zone.
    const moved = await get(`/t/demo/audit/e/${entry.id}?tz=UTC`, owner);
    expect(moved.status).toBe(302);
    expect(moved.headers.get("location")).toBe(`${permalink}?tz=UTC`);
  });

  it("gives hashes over GraphQL in hex: evidence SHA-256, checkpoint root and key ID, and the entry's leaf", async () => {
    const result = await web.gql<{
      evidences: { nodes: Array<{ rowId: string; sha256: string }> };
      auditCheckpoints: {
        nodes: Array<{ treeSize: string; rootHash: string; rootHashHex: string; keyId: string; note: string }>;
      };
      auditLogEntry: { seq: string; leaf: string; leafHash: string };
    }>(
      `{ evidences(first: 3) { nodes { rowId sha256 } }
         auditCheckpoints(last: 1) { nodes { treeSize rootHash rootHashHex keyId note } }
         auditLogEntry(seq: "3") { seq leaf leafHash } }`,
      { cookie: owner },
    );
    expect(result.errors).toBeUndefined();
    const evidence = result.data?.evidences.nodes ?? [];
    expect(evidence.length).toBeGreaterThan(0);
    for (const e of evidence) {
      const stored = await one<{ hex: string }>(
        "select encode(sha256, 'hex') as hex from app_public.evidence where id = $1",
        [e.rowId],
      );
      expect(e.sha256).toBe(stored.hex);
      expect(e.sha256).toMatch(/^[0-9a-f]{64}$/);
    }
    const [checkpoint] = result.data?.auditCheckpoints.nodes ?? [];
    expect(checkpoint.rootHash).toMatch(/^[0-9a-f]{64}$/);
    expect(checkpoint.rootHash).toBe(checkpoint.rootHashHex);
    // The note carries the root in base64 and ends with "— <name> base64(key ID || signature)".
    const lines = checkpoint.note.split("\n");
    expect(Buffer.from(lines[2], "base64").toString("hex")).toBe(checkpoint.rootHash);
    const signature = lines.at(-2)?.split(" ").at(-1) ?? "";
    expect(checkpoint.keyId).toBe(Buffer.from(signature, "base64").subarray(0, 4).toString("hex"));
    const entry = result.data?.auditLogEntry;
    expect(
      createHash("sha256")
        .update(Buffer.concat([Buffer.from([0]), Buffer.from(entry?.leaf ?? "", "utf8")]))
        .digest("hex"),
    ).toBe(entry?.leafHash);
    // Members see no leaves.
    const member = await web.gql<{ auditLogEntry: unknown }>('{ auditLogEntry(seq: "3") { leaf } }', {
      cookie: await web.signIn("member@demo.test"),
    });
    expect(member.data?.auditLogEntry ?? null).toBeNull();
  });
});
