/**
 * Evidence packs built by the worker from the database: requesting one enqueues the job in the
 * same transaction; the built pack verifies offline; downloads are for owners/admins and are
 * audited; a worker killed mid-build leaves nothing half-built and the retry completes.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeBlob } from "../../src/db/blobs.ts";
import { withContext } from "../../src/db/context.ts";
import { verifyPack } from "../../src/packs/verify.ts";
import { asUser, createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { requireTools } from "../helpers/prerequisites.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";

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

  it("builds a pack that verifies offline, with a PDF listing every entry; owners and admins download it", async () => {
    const id = await requestExport();
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
    expect(verdict).toMatchObject({ ok: true });

    const pdf = await download(id, "report.pdf", await web.signIn("admin@demo.test"));
    expect(pdf.status).toBe(200);
    const pdfPath = path.join(tmp, "report.pdf");
    await fs.writeFile(pdfPath, Buffer.from(await pdf.arrayBuffer()));
    requireTools("pdftotext");
    const text = execFileSync("pdftotext", ["-layout", pdfPath, "-"]).toString().replace(/\s+/g, " ");
    // Every entry of the incident up to the chain head the pack was signed at.
    const head = verdict.ok ? verdict.summary.head.seq : 0;
    const { rows: entries } = await t.superuser.query(
      "select seq, action from app_public.audit_log where tenant_id = $1 and incident_id = $2 and seq <= $3 order by seq",
      [demo, incidentId, head],
    );
    expect(entries.length).toBeGreaterThan(10);
    for (const entry of entries) expect(text).toContain(entry.action);

    // A download is recorded when its transaction commits, just after the last byte is sent.
    const downloads = async () =>
      (
        await t.superuser.query(
          "select actor_label from app_public.audit_log where tenant_id = $1 and action = 'export.downloaded' and resource_id = $2 order by seq",
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

  it("a member or viewer cannot download a pack", async () => {
    const { rows } = await t.superuser.query("select id from app_public.exports where status = 'ready' limit 1");
    for (const email of ["member@demo.test", "viewer@demo.test"]) {
      const response = await download(rows[0].id, "pack.zip", await web.signIn(email));
      expect(response.status).toBe(403);
      expect(await response.text()).not.toContain("PK");
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
        async () => (await exportRow(id)).status === "ready",
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
});
