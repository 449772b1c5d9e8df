/**
 * No request can crash the process, freeze it or exhaust its database pool: malformed, truncated
 * and aborted multipart uploads; HEAD, aborted and slow-reading clients on every download; and
 * concurrent sign-in guesses, which must never get past the limit. After each, the server answers
 * and every pooled connection is back (the test reads the pool's counters).
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import { join } from "node:path";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { csrfToken } from "../../src/http/csrf.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";
import { sealAll } from "../helpers/seal.ts";
import { startTestServer, type TestServer } from "../helpers/server.ts";
import { runJobsOnce } from "../helpers/worker.ts";

/** Sends raw bytes over one connection; resolves with what came back when the server closes or after `waitMs`. */
function raw(
  url: string,
  head: string,
  body: Buffer | string,
  options: { waitMs?: number; destroyAfterSend?: boolean } = {},
): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = net.connect(Number(port), hostname);
    let answer = "";
    const done = () => {
      socket.destroy();
      resolve(answer);
    };
    socket.on("data", (chunk) => {
      answer += chunk.toString("latin1");
    });
    socket.on("error", done);
    socket.on("close", done);
    socket.on("connect", () => {
      socket.write(head);
      socket.write(body);
      if (options.destroyAfterSend) setTimeout(() => socket.destroy(), 50);
    });
    setTimeout(done, options.waitMs ?? 3000);
  });
}

/** Every client of the pool is back and idle, and nobody waits for one. */
async function poolIsWhole(pool: pg.Pool) {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    if (pool.waitingCount === 0 && pool.idleCount === pool.totalCount) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  expect({ waiting: pool.waitingCount, busy: pool.totalCount - pool.idleCount }).toEqual({ waiting: 0, busy: 0 });
  const { rows } = await pool.query("select 1 as ok");
  expect(rows[0].ok).toBe(1);
}

describe.each(servers())("resilience on $name", (server) => {
  let t: TestDatabase;
  let web: TestServer;
  let incidentId: string;
  let ownerCookie: string;
  let token: string;
  let evidenceId: string;
  let exportId: string;
  const bigFile = randomBytes(3 * 1024 * 1024 + 123);
  // An error no code handled: in `npm start` it would have ended the process.
  const uncaught: string[] = [];
  const onUncaught = (error: Error) => uncaught.push(error.message);
  // This server's own directory for uploads in transit: other test files upload at the same time.
  let uploadDir: string;

  beforeAll(async () => {
    process.on("uncaughtException", onUncaught);
    t = await createTestDatabase(server, { seed: true });
    uploadDir = await fs.mkdtemp(join(os.tmpdir(), "attest-resilience-"));
    web = await startTestServer(t, { maxUploadBytes: 8 * 1024 * 1024, uploadDir });
    ownerCookie = await web.signIn("owner@demo.test");
    const created = await web.gql<{ createApiToken: { result: { token: string } } }>(
      `mutation { createApiToken(input: { name: "resilience" }) { result { token } } }`,
      { cookie: ownerCookie, tenant: "demo" },
    );
    token = created.data?.createApiToken.result.token ?? "";
    incidentId = (
      await t.superuser.query(
        "select i.id from app_public.incidents i join app_public.tenants t on t.id = i.tenant_id where t.slug = 'demo' and i.deleted_at is null order by i.created_at limit 1",
      )
    ).rows[0].id;
    // A 3 MiB file (four chunks) to download, and a ready evidence pack (built by the worker's task).
    const form = new FormData();
    form.append("file", new Blob([new Uint8Array(bigFile)]), "big.bin");
    const upload = await fetch(`${web.url}/api/incidents/${incidentId}/evidence`, {
      method: "POST",
      headers: { Authorization: `Bearer ${token}` },
      body: form,
    });
    evidenceId = ((await upload.json()) as { evidence: Array<{ id: string }> }).evidence[0].id;
    const requested = await web.gql<{ createExport: { export: { rowId: string } } }>(
      `mutation($id: UUID!) { createExport(input: { export: { incidentId: $id } }) { export { rowId } } }`,
      { cookie: ownerCookie, tenant: "demo", variables: { id: incidentId } },
    );
    exportId = requested.data?.createExport.export.rowId ?? "";
    expect(exportId).not.toBe("");
    await sealAll(t.pools.owner); // as the worker's sealer would, before the pack waits for it
    await runJobsOnce(t.pools.owner);
    const { rows } = await t.superuser.query("select status from app_public.exports where id = $1", [exportId]);
    expect(rows[0].status).toBe("ready");
  });
  afterAll(async () => {
    process.off("uncaughtException", onUncaught);
    await web?.close();
    await t?.drop();
    if (uploadDir) await fs.rm(uploadDir, { recursive: true, force: true });
  });

  const boundary = "----attestfuzz";
  const multipartHead = (path: string, length: number, extra = "") =>
    `POST ${path} HTTP/1.1\r\nHost: ${new URL(web.url).host}\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${length}\r\n${extra}Connection: close\r\n\r\n`;
  // A file part whose closing boundary never comes (busboy: "Unexpected end of form").
  const unterminated = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nhello, this part never ends`,
  );

  const uploadDirs = async () => (await fs.readdir(uploadDir)).filter((n) => n.startsWith("attest-upload-"));

  async function stillServing() {
    await new Promise((r) => setTimeout(r, 100));
    expect(uncaught, "errors that would have ended the process").toEqual([]);
    const health = await fetch(`${web.url}/healthz`);
    expect(health.status).toBe(200);
    const gql = await web.gql("{ currentUser { email } }", { token });
    expect(gql.errors).toBeUndefined();
    await poolIsWhole(t.pools.auth);
  }

  it("answers a multipart body without its closing boundary with 400, on the API and on the page form", async () => {
    const api = await raw(
      web.url,
      multipartHead(`/api/incidents/${incidentId}/evidence`, unterminated.length, `Authorization: Bearer ${token}\r\n`),
      unterminated,
    );
    expect(api).toMatch(/^HTTP\/1\.1 400/);
    expect(api).toContain("The upload could not be read");
    const page = await raw(
      web.url,
      multipartHead(
        `/t/demo/incidents/${incidentId}/evidence?_csrf=${encodeURIComponent(csrfToken(decodeURIComponent(ownerCookie.split("=")[1])))}`,
        unterminated.length,
        `Cookie: ${ownerCookie}\r\nOrigin: ${web.url}\r\nAccept: application/json\r\n`,
      ),
      unterminated,
    );
    expect(page).toMatch(/^HTTP\/1\.1 (400|303|302)/);
    await stillServing();
  });

  it("survives truncated, aborted and nonsensical uploads, and saves nothing", async () => {
    // Upload directories (attest-upload-* in this server's upload directory) made during this test and still there.
    const existing = new Set(await uploadDirs());
    const leftovers = async () => (await uploadDirs()).filter((d) => !existing.has(d));
    const before = (await t.superuser.query("select count(*)::int as n from app_public.evidence")).rows[0].n;
    const path = `/api/incidents/${incidentId}/evidence`;
    const auth = `Authorization: Bearer ${token}\r\n`;
    // Content-Length promises more than is sent, then the client goes away.
    await raw(web.url, multipartHead(path, 100_000, auth), unterminated, { destroyAfterSend: true, waitMs: 500 });
    // The client goes away in the middle of a file that would otherwise be fine.
    const half = Buffer.concat([unterminated, randomBytes(200_000)]);
    await raw(web.url, multipartHead(path, half.length + 1000, auth), half, { destroyAfterSend: true, waitMs: 500 });
    // Garbage and empty bodies, a header without a boundary, a boundary that never appears.
    const garbage = randomBytes(5000);
    expect(await raw(web.url, multipartHead(path, garbage.length, auth), garbage)).toMatch(/^HTTP\/1\.1 4\d\d/);
    expect(await raw(web.url, multipartHead(path, 0, auth), "")).toMatch(/^HTTP\/1\.1 4\d\d/);
    const noBoundary = `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data\r\nContent-Length: 5\r\n${auth}Connection: close\r\n\r\n`;
    expect(await raw(web.url, noBoundary, "hello")).toMatch(/^HTTP\/1\.1 415/);
    // A second part that breaks off after a complete first one: all or none.
    const twoParts = Buffer.from(
      `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="ok.txt"\r\n\r\nfine\r\n` +
        `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="broken.txt"\r\n\r\nbroken`,
    );
    expect(await raw(web.url, multipartHead(path, twoParts.length, auth), twoParts)).toMatch(/^HTTP\/1\.1 400/);
    const after = (await t.superuser.query("select count(*)::int as n from app_public.evidence")).rows[0].n;
    expect(after).toBe(before);
    // Every request was finished off: none waits forever on a part that never ends, and the
    // temporary files of the broken uploads are gone.
    const deadline = Date.now() + 5000;
    let left = await leftovers();
    while (left.length > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      left = await leftovers();
    }
    expect(left).toEqual([]);
    await stillServing();
  });

  const downloads = () => [
    { url: `/api/evidence/${evidenceId}/download`, headers: { Authorization: `Bearer ${token}` } },
    { url: `/t/demo/incidents/${incidentId}/evidence/${evidenceId}/download`, headers: { Cookie: ownerCookie } },
    { url: `/api/exports/${exportId}/pack.zip`, headers: { Authorization: `Bearer ${token}` } },
    { url: `/api/exports/${exportId}/report.pdf`, headers: { Authorization: `Bearer ${token}` } },
    { url: `/t/demo/exports/${exportId}/pack.zip`, headers: { Cookie: ownerCookie } },
    { url: `/t/demo/exports/${exportId}/report.pdf`, headers: { Cookie: ownerCookie } },
  ];
  const downloadsRecorded = async () =>
    (await t.superuser.query("select download_count::int as n from app_public.exports where id = $1", [exportId]))
      .rows[0].n as number;

  it("answers HEAD on every download with its headers, holds nothing, and records no download", async () => {
    const recorded = await downloadsRecorded();
    // Three times the pool size for each download: a leaked connection per request would exhaust it.
    for (const d of downloads()) {
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => fetch(`${web.url}${d.url}`, { method: "HEAD", headers: d.headers })),
      );
      for (const response of answers) {
        expect(response.status, d.url).toBe(200);
        expect(Number(response.headers.get("content-length")), d.url).toBeGreaterThan(0);
        expect(response.headers.get("content-disposition"), d.url).toMatch(/^attachment;/);
      }
    }
    expect(await downloadsRecorded()).toBe(recorded);
    await stillServing();
  });

  it("survives clients that abort every download after the first bytes", async () => {
    for (const d of downloads()) {
      const head = `GET ${d.url} HTTP/1.1\r\nHost: x\r\n${Object.entries(d.headers)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("")}\r\n`;
      await Promise.all(
        Array.from({ length: 8 }, () => raw(web.url, head, "", { destroyAfterSend: true, waitMs: 300 })),
      );
    }
    await stillServing();
  });

  it("holds no connection while a client reads slowly, and still sends every byte", async () => {
    const { hostname, port } = new URL(web.url);
    const socket = net.connect(Number(port), hostname);
    await new Promise((r) => socket.once("connect", r));
    socket.write(
      `GET /api/evidence/${evidenceId}/download HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${token}\r\nConnection: close\r\n\r\n`,
    );
    const received: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => received.push(chunk));
    await new Promise((r) => setTimeout(r, 200));
    socket.pause(); // a client that stops reading in the middle of a 3 MiB file
    await new Promise((r) => setTimeout(r, 1500));
    expect(t.pools.auth.totalCount - t.pools.auth.idleCount).toBe(0);
    await poolIsWhole(t.pools.auth);
    socket.resume();
    const complete = () => {
      const response = Buffer.concat(received);
      const start = response.indexOf("\r\n\r\n");
      return start >= 0 && response.length - start - 4 >= bigFile.length;
    };
    const deadline = Date.now() + 20_000;
    while (!complete() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    socket.destroy();
    const response = Buffer.concat(received);
    expect(response.toString("latin1", 0, 12)).toBe("HTTP/1.1 200");
    const body = response.subarray(response.indexOf("\r\n\r\n") + 4);
    expect(body.length).toBe(bigFile.length);
    expect(body.equals(bigFile)).toBe(true);
    await stillServing();
  });

  it("records a download once, when it starts (before its first byte is sent)", async () => {
    const recorded = await downloadsRecorded();
    const response = await fetch(`${web.url}/api/exports/${exportId}/pack.zip`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    const zip = Buffer.from(await response.arrayBuffer());
    expect(zip.length).toBe(Number(response.headers.get("content-length")));
    const deadline = Date.now() + 5000;
    while ((await downloadsRecorded()) === recorded && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    expect(await downloadsRecorded()).toBe(recorded + 1);
  });

  it("checks at most 10 passwords for one email, and 50 from one IP, however many guesses arrive at once", async () => {
    const login = (email: string, password: string) =>
      fetch(`${web.url}/login`, {
        method: "POST",
        redirect: "manual",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: web.url },
        body: new URLSearchParams({ email, password }),
      }).then((r) => r.status);
    const statuses = await Promise.all([
      ...Array.from({ length: 29 }, (_, i) => login("viewer@demo.test", `wrong-${i}`)),
      login("viewer@demo.test", "attest-demo"),
    ]);
    const checked = statuses.filter((s) => s !== 429).length;
    expect(checked).toBeLessThanOrEqual(10);
    expect(statuses.filter((s) => s === 429).length).toBe(30 - checked);
    // Once the limit is reached, even the right password is refused.
    expect(await login("viewer@demo.test", "attest-demo")).toBe(429);

    // The per-IP limit (50 in 15 minutes) holds the same way for guesses at many accounts.
    const { rows } = await t.superuser.query(
      "select count(*)::int as n from app_private.sign_in_failures where host(ip) in ('127.0.0.1', '::ffff:127.0.0.1') and attempted_at > now() - interval '15 minutes'",
    );
    const fromIp = await Promise.all(
      Array.from({ length: 60 }, (_, i) => login(`nobody-${i}@demo.test`, "attest-demo")),
    );
    expect(rows[0].n).toBeGreaterThanOrEqual(30);
    expect(fromIp.filter((s) => s !== 429).length).toBeLessThanOrEqual(Math.max(0, 50 - rows[0].n));
    expect(fromIp.filter((s) => s === 429).length).toBeGreaterThanOrEqual(60 - (50 - rows[0].n));
    await poolIsWhole(t.pools.auth);
  });
});
