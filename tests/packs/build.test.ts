/**
 * Evidence packs built by the worker from the database: requesting one enqueues the job in the
 * same transaction; the worker waits until the incident's entries are sealed (the tests seal with
 * sealAll, as the sealer would); the built pack (format v2) verifies offline; its audit proof
 * material grows only logarithmically with unrelated activity in the tenant and holds nothing of
 * other incidents; downloads are for owners/admins and are audited; a worker killed mid-build
 * leaves nothing half-built and the retry completes.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { activeSigningKey, rotateSigningKey } from "../../src/audit/keys.ts";
import { writeBlob } from "../../src/db/blobs.ts";
import { withContext } from "../../src/db/context.ts";
import { NotSealedError, waitUntilSealed } from "../../src/packs/build.ts";
import type { LeafLine } from "../../src/packs/format.ts";
import { verifyPack } from "../../src/packs/verify.ts";
import { asUser, createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { requireTools } from "../helpers/prerequisites.ts";
import { sealAll } from "../helpers/seal.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { unzipTo, zipDashR } from "./pack-tools.ts";

const root = path.resolve(import.meta.dirname, "../..");

class WorkerProcess {
  child: ChildProcess;
  output = "";
  constructor(t: TestDatabase) {
    this.child = spawn(process.execPath, ["tests/helpers/worker-process.ts"], {
      cwd: root,
      env: {
        ...process.env,
        ATTEST_TEST_OWNER_URL: t.db.owner.connectionString,
        ATTEST_TEST_OWNER_ROLE: t.db.owner.options?.match(/role=(\S+)/)?.[1] ?? "",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.on("data", (d) => {
      this.output += d;
    });
    this.child.stderr?.on("data", (d) => {
      this.output += d;
    });
  }
  async ready() {
    await until(
      () => this.output.includes("worker ready"),
      30_000,
      () => this.output,
    );
  }
  async stop() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once("exit", r));
      this.child.kill("SIGTERM");
      await exited;
    }
  }
}

/** The JSONL lines of a pack's audit/entries.jsonl. */
function packEntries(zipPath: string): LeafLine[] {
  return execFileSync("unzip", ["-p", zipPath, "audit/entries.jsonl"])
    .toString("utf8")
    .trimEnd()
    .split("\n")
    .map((l) => JSON.parse(l) as LeafLine);
}

async function until(check: () => boolean | Promise<boolean>, ms: number, describe?: () => string) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out${describe ? `:\n${describe()}` : ""}`);
}

describe.each(servers())("evidence packs on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let demo: string;
  let incidentId: string;
  let tmp: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    web = await startTestServer(t);
    demo = (await ids(t)).tenants.demo;
    incidentId = (
      await t.superuser.query("select id from app_public.incidents where tenant_id = $1 and title like 'Ransomware%'", [
        demo,
      ])
    ).rows[0].id;
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), "attest-packs-"));
  });
  afterAll(async () => {
    await web?.close();
    await t?.drop();
    await fs.rm(tmp, { recursive: true, force: true });
  });

  const requestExport = () =>
    asUser(t, "owner@demo.test", "demo", async (c) => {
      const { rows } = await c.query("insert into app_public.exports (incident_id) values ($1) returning id", [
        incidentId,
      ]);
      return rows[0].id as string;
    });
  const exportRow = async (id: string) =>
    (await t.superuser.query("select * from app_public.exports where id = $1", [id])).rows[0];
  /** Whether the export is ready; seals what is pending first, as the worker's sealer would. */
  const sealedAndReady = async (id: string) => {
    await sealAll(t.pools.owner);
    return (await exportRow(id)).status === "ready";
  };
  /** Requests a pack, has a worker build it, downloads it as the owner; returns the ZIP's path. */
  const buildAndDownload = async (name: string) => {
    const id = await requestExport();
    const worker = new WorkerProcess(t);
    try {
      await worker.ready();
      await until(
        () => sealedAndReady(id),
        60_000,
        () => worker.output,
      );
    } finally {
      await worker.stop();
    }
    const zip = await download(id, "pack.zip", await web.signIn("owner@demo.test"));
    expect(zip.status).toBe(200);
    const zipPath = path.join(tmp, name);
    await fs.writeFile(zipPath, Buffer.from(await zip.arrayBuffer()));
    return { id, zipPath };
  };
  const download = async (id: string, file: "pack.zip" | "report.pdf", cookie: string) => {
    const response = await fetch(`${web.url}/t/demo/exports/${id}/${file}`, { headers: { Cookie: cookie } });
    return response;
  };

  it("a rolled-back request enqueues nothing; a committed one enqueues exactly one job", async () => {
    const jobs = async () =>
      (
        await t.superuser.query(
          "select count(*)::int as n from graphile_worker.jobs where task_identifier = 'build_evidence_pack'",
        )
      ).rows[0].n as number;
    const before = await jobs();
    await expect(
      asUser(t, "owner@demo.test", "demo", async (c) => {
        await c.query("insert into app_public.exports (incident_id) values ($1)", [incidentId]);
        throw new Error("changed my mind");
      }),
    ).rejects.toThrow("changed my mind");
    expect(await jobs()).toBe(before);
    const id = await requestExport();
    expect(await jobs()).toBe(before + 1);
    expect((await exportRow(id)).status).toBe("queued");
  });

  it("the build waits, holding no transaction, until the incident's entries are sealed, and gives up after its timeout", async () => {
    const id = await requestExport(); // its export.requested entry (at least) is not sealed yet
    const started = Date.now();
    const timedOut = waitUntilSealed(t.pools.owner, demo, id, { timeoutMs: 400, pollMs: 50 });
    await expect(timedOut).rejects.toThrow(NotSealedError);
    await expect(timedOut).rejects.toThrow(
      /^\d+ audit entr(y|ies) of the incident (is|are) not sealed yet; is the sealer running\?$/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    const waiting = waitUntilSealed(t.pools.owner, demo, id, { timeoutMs: 10_000, pollMs: 50 });
    await sealAll(t.pools.owner); // seals while the build waits: the wait holds back nothing
    await expect(waiting).resolves.toBeUndefined();
  });

  it("builds a pack that verifies offline, with a PDF listing every entry; owners and admins download it", async () => {
    const id = await requestExport();
    const worker = new WorkerProcess(t);
    try {
      await worker.ready();
      await until(
        () => sealedAndReady(id),
        60_000,
        () => worker.output,
      );
    } finally {
      await worker.stop();
    }
    const owner = await web.signIn("owner@demo.test");
    const zip = await download(id, "pack.zip", owner);
    expect(zip.status).toBe(200);
    expect(zip.headers.get("content-type")).toBe("application/zip");
    const zipPath = path.join(tmp, "pack.zip");
    await fs.writeFile(zipPath, Buffer.from(await zip.arrayBuffer()));
    const { fingerprint } = (
      await t.superuser.query("select fingerprint from app_private.signing_keys where retired_at is null")
    ).rows[0];
    const verdict = await verifyPack(zipPath, { trustedFingerprints: [fingerprint] });
    expect(verdict).toMatchObject({ ok: true, summary: { format: "attest-evidence-pack/2" } });

    const pdf = await download(id, "report.pdf", await web.signIn("admin@demo.test"));
    expect(pdf.status).toBe(200);
    const pdfPath = path.join(tmp, "report.pdf");
    await fs.writeFile(pdfPath, Buffer.from(await pdf.arrayBuffer()));
    requireTools("pdftotext");
    const text = execFileSync("pdftotext", ["-layout", pdfPath, "-"]).toString().replace(/\s+/g, " ");
    // Every entry of the incident up to the checkpoint the pack was signed at, in the pack and the PDF.
    const treeSize = verdict.ok ? (verdict.summary.checkpoint?.treeSize ?? 0) : 0;
    const { rows: entries } = await t.superuser.query(
      `select l.seq::int as seq, e.action from app_hidden.audit_leaves l
       join app_public.audit_log e on e.tenant_id = l.tenant_id and e.id = l.entry_id
       where l.tenant_id = $1 and l.incident_id = $2 and l.seq <= $3 order by l.seq`,
      [demo, incidentId, treeSize],
    );
    expect(entries.length).toBeGreaterThan(10);
    expect(packEntries(zipPath).map((l) => l.seq)).toEqual(entries.map((e) => e.seq));
    for (const entry of entries) expect(text).toContain(entry.action);

    // A download is recorded once, in a transaction that commits before its first byte is sent.
    const downloads = async () =>
      (
        await t.superuser.query(
          "select actor_label from app_public.audit_log where tenant_id = $1 and action = 'export.downloaded' and resource_id = $2 order by id",
          [demo, id],
        )
      ).rows.map((r) => r.actor_label as string);
    await until(
      async () => (await downloads()).length === 2,
      10_000,
      () => "downloads not recorded",
    );
    expect(await downloads()).toEqual(["owner@demo.test", "admin@demo.test"]);
    const completed = await t.superuser.query(
      "select actor_label, surface from app_public.audit_log where tenant_id = $1 and action = 'export.completed' and resource_id = $2",
      [demo, id],
    );
    expect(completed.rows).toEqual([{ actor_label: "system", surface: "worker" }]);
  });

  it("a pack's proof material grows only logarithmically with unrelated activity, and holds nothing of other incidents", async () => {
    const before = await buildAndDownload("before.zip");
    // 500 entries in other incidents of the tenant.
    const other = (
      await t.superuser.query(
        "select id from app_public.incidents where tenant_id = $1 and id <> $2 and deleted_at is null order by created_at limit 1",
        [demo, incidentId],
      )
    ).rows[0].id as string;
    await withContext(t.pools.owner, { surface: "sql" }, async (c) => {
      for (let i = 0; i < 500; i++) {
        await c.query("update app_public.incidents set description = $3 where tenant_id = $1 and id = $2", [
          demo,
          other,
          `Unrelated revision ${i}`,
        ]);
      }
    });
    await sealAll(t.pools.owner);
    const after = await buildAndDownload("after.zip");

    const summary = async (zipPath: string) => {
      const verdict = await verifyPack(zipPath);
      expect(verdict).toMatchObject({ ok: true });
      const lines = packEntries(zipPath);
      const treeSize = verdict.ok ? (verdict.summary.checkpoint?.treeSize ?? 0) : 0;
      return {
        treeSize,
        lines,
        hashesPerEntry: lines.reduce((n, l) => n + l.proof.length, 0) / lines.length,
        zipBytes: (await fs.stat(zipPath)).size,
      };
    };
    const a = await summary(before.zipPath);
    const b = await summary(after.zipPath);
    expect(b.treeSize).toBeGreaterThanOrEqual(a.treeSize + 500);
    // Each proof has at most one hash per level of the tree; 500 more entries add at most ~2 levels.
    for (const s of [a, b]) {
      expect(s.lines.every((l) => l.proof.length <= Math.ceil(Math.log2(s.treeSize)))).toBe(true);
    }
    expect(b.hashesPerEntry - a.hashesPerEntry).toBeLessThanOrEqual(
      Math.ceil(Math.log2(b.treeSize)) - Math.floor(Math.log2(a.treeSize)),
    );
    // The new pack has only this incident's few new entries (the first export's request, completion,
    // download); its size grows by those, not by the 500 others.
    expect(b.lines.length - a.lines.length).toBeLessThan(10);
    expect(b.zipBytes - a.zipBytes).toBeLessThan(20_000);
    const contents = execFileSync("unzip", ["-p", after.zipPath]).toString("utf8");
    expect(contents).not.toContain(other);
    expect(contents).not.toContain("Unrelated revision");
  });

  it("a member or viewer cannot download a pack", async () => {
    const { rows } = await t.superuser.query("select id from app_public.exports where status = 'ready' limit 1");
    for (const email of ["member@demo.test", "viewer@demo.test"]) {
      const response = await download(rows[0].id, "pack.zip", await web.signIn(email));
      expect(response.status).toBe(403);
      // No ZIP (its first bytes are PK\x03\x04; the refusal page's random tokens may hold "PK").
      expect(response.headers.get("content-type")).not.toBe("application/zip");
      expect((await response.text()).startsWith("PK\u0003\u0004")).toBe(false);
    }
  });

  it("a worker killed mid-build leaves nothing half-built, and the retry completes one pack", async () => {
    // 60 MB of evidence, so that the build takes long enough to be killed in the middle.
    await withContext(t.pools.owner, { surface: "sql" }, async (c) => {
      const blob = await writeBlob(
        c,
        demo,
        (function* () {
          for (let i = 0; i < 60; i++) yield Buffer.alloc(1024 * 1024, i);
        })(),
      );
      await c.query(
        "insert into app_public.evidence (tenant_id, incident_id, filename, content_type, blob_id) values ($1, $2, 'disk-image.bin', 'application/octet-stream', $3)",
        [demo, incidentId, blob.id],
      );
    });
    const blobsBefore = (await t.superuser.query("select count(*)::int as n from app_private.blobs")).rows[0]
      .n as number;
    const id = await requestExport();
    const first = new WorkerProcess(t);
    await first.ready();
    await until(
      async () => {
        await sealAll(t.pools.owner);
        const row = await exportRow(id);
        return row.status === "building" && row.progress >= 5;
      },
      60_000,
      () => first.output,
    );
    const killed = new Promise((r) => first.child.once("exit", r));
    first.child.kill("SIGKILL");
    await killed;
    const afterKill = await exportRow(id);
    expect(afterKill.status).toBe("building");
    expect(afterKill.result_blob_id).toBeNull();

    const second = new WorkerProcess(t);
    try {
      await second.ready();
      await until(
        () => sealedAndReady(id),
        120_000,
        () => second.output,
      );
    } finally {
      await second.stop();
    }
    // (Without worker/liveness.ts the killed worker's lock would hold the job for 4 hours.)
    const done = await exportRow(id);
    expect(done.result_blob_id).not.toBeNull();
    // Exactly the two blobs of this pack were added: the killed attempt left nothing behind.
    const blobsAfter = (await t.superuser.query("select count(*)::int as n from app_private.blobs")).rows[0]
      .n as number;
    expect(blobsAfter).toBe(blobsBefore + 2);
    const ready = await t.superuser.query(
      "select count(*)::int as n from app_public.exports where id = $1 and status = 'ready'",
      [id],
    );
    expect(ready.rows[0].n).toBe(1);
  });
  it("a pack whose checkpoint was signed just before a key rotation is signed by that key, which stays published", async () => {
    const id = await requestExport();
    await sealAll(t.pools.owner); // the checkpoint covering the request, signed by the current key
    const before = await activeSigningKey(t.pools.owner);
    const after = await rotateSigningKey(t.pools.owner);
    const worker = new WorkerProcess(t);
    try {
      await worker.ready();
      await until(
        async () => (await exportRow(id)).status === "ready",
        60_000,
        () => worker.output,
      );
    } finally {
      await worker.stop();
    }
    const zip = await download(id, "pack.zip", await web.signIn("owner@demo.test"));
    const zipPath = path.join(tmp, "rotated.zip");
    await fs.writeFile(zipPath, Buffer.from(await zip.arrayBuffer()));
    expect(after.fingerprint).not.toBe(before.fingerprint);
    expect(await verifyPack(zipPath, { trustedFingerprints: [before.fingerprint, after.fingerprint] })).toMatchObject({
      ok: true,
      summary: { fingerprint: before.fingerprint },
    });
  });

  it("stores evidence that does not compress and deflates the rest; the pack passes unzip -t and verifies, also re-zipped", async () => {
    const random = randomBytes(2 * 1024 * 1024 + 99);
    const text = Buffer.from(
      Array.from(
        { length: 30_000 },
        (_, i) => `2026-11-03T09:00:${String(i % 60).padStart(2, "0")}Z sshd[${i}]: Failed password for root\n`,
      ).join(""),
    );
    await withContext(t.pools.owner, { surface: "sql" }, async (c) => {
      for (const [filename, bytes] of [
        ["memory.bin.gz", random],
        ["auth.log", text],
      ] as const) {
        const blob = await writeBlob(c, demo, [bytes]);
        await c.query(
          "insert into app_public.evidence (tenant_id, incident_id, filename, content_type, blob_id) values ($1, $2, $3, 'application/octet-stream', $4)",
          [demo, incidentId, filename, blob.id],
        );
      }
    });
    const { zipPath } = await buildAndDownload("stored.zip");
    const listing = execFileSync("unzip", ["-v", zipPath]).toString("utf8").split("\n");
    const line = (suffix: string) =>
      listing
        .find((l) => l.trimEnd().endsWith(suffix))
        ?.trim()
        .split(/\s+/) ?? [];
    expect(line("-memory.bin.gz").slice(0, 2)).toEqual([String(random.length), "Stored"]);
    expect(line("-auth.log")[1]).toMatch(/^Defl/);
    expect(Number(line("-auth.log")[2])).toBeLessThan(text.length / 4);
    expect(execFileSync("unzip", ["-tq", zipPath]).toString()).toMatch(/^No errors detected/);
    expect(await verifyPack(zipPath)).toMatchObject({ ok: true });
    const rezipped = path.join(tmp, "stored-rezipped.zip");
    await zipDashR(await unzipTo(tmp, zipPath), rezipped);
    expect(await verifyPack(rezipped)).toMatchObject({ ok: true });
  });
});
