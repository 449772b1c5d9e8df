/**
 * npm run bench:pack-e2e — an evidence pack end to end, as a user gets one, against `zip -6`.
 *
 * On a fresh database (BENCH_PG_URL, default the PostgreSQL at 127.0.0.1:5432; a superuser URL;
 * dropped afterwards with its roles unless BENCH_KEEP=1) it seeds the demo workspace and starts
 * Attest itself (`node src/main.ts`: HTTP server, graphile-worker and sealer in one process, as
 * `npm start` runs them). Then, as owner@demo.test with an API token:
 *
 *  1. creates an incident (GraphQL) and uploads EVIDENCE_MB (default 200) MB of evidence through
 *     POST /api/incidents/:id/evidence: half incompressible (AES-CTR keystream, like images or
 *     archives), half log text (sshd/nginx/kernel lines with varying addresses, ids and times);
 *  2. BENCH_RUNS times (default 3), alternating which goes first:
 *     - requests a pack (`createExport`) and polls `exportByRowId` every 20 ms until it is `ready`:
 *       request → ready seconds;
 *     - `zip -6 -r` of the same files (the ones uploaded, from the same directory);
 *  3. downloads the last pack through GET /api/exports/:id/pack.zip and verifies it (verifyPack).
 *
 * Memory: the Attest process's RSS (server and worker are that one process) is sampled every 20 ms
 * from /proc; growth = peak during the build − RSS just before the request.
 * Prints a table with the medians and the targets of issue #9: rate ≥ 0.8× zip -6, growth ≤ 150 MB.
 * It also prints the phases of each build as the worker logs them (seal wait, PDF, ZIP).
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createCipheriv, randomBytes } from "node:crypto";
import { createWriteStream, openAsBlob } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { promisify } from "node:util";
import pg from "pg";
import { createPools } from "../src/db/pools.ts";
import { seedDemoWorkspace } from "../src/db/seed.ts";
import { prepareDatabase, withDatabase } from "../src/db/setup.ts";
import { verifyPack } from "../src/packs/verify.ts";

const run = promisify(execFile);
const MB = 1024 * 1024;
const ADMIN = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const EVIDENCE_MB = Number(process.env.EVIDENCE_MB ?? 200);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const FILES = 4;
const TARGET_RATIO = 0.8;
const TARGET_GROWTH_MB = 150;
const out = (line: string) => process.stdout.write(`${line}\n`);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

// ---------------------------------------------------------------------------------------------
// Evidence content
// ---------------------------------------------------------------------------------------------

/** `size` incompressible bytes (AES-128-CTR keystream), seeded by `i`. */
async function* randomContent(i: number, size: number): AsyncGenerator<Buffer> {
  const cipher = createCipheriv("aes-128-ctr", Buffer.alloc(16, i + 1), Buffer.alloc(16, 0));
  const zeros = Buffer.alloc(MB);
  for (let done = 0; done < size; done += MB) yield cipher.update(zeros.subarray(0, Math.min(MB, size - done)));
}

/** `size` bytes of log text: a mix of sshd, nginx and kernel lines with varying fields (deterministic). */
async function* logContent(i: number, size: number): AsyncGenerator<Buffer> {
  let state = 0x9e3779b9 ^ (i * 7919);
  const rnd = (n: number) => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) % n;
  };
  const users = ["admin", "root", "oracle", "ubuntu", "test", "git", "postgres", "deploy", "jenkins", "pi"];
  const paths = ["/", "/login", "/api/v1/orders", "/static/app.js", "/wp-login.php", "/healthz", "/api/v1/users/"];
  const agents = ["Mozilla/5.0 (X11; Linux x86_64)", "curl/8.5.0", "python-requests/2.31", "Go-http-client/1.1"];
  let t = Date.UTC(2026, 10, 3, 0, 0, 0);
  let done = 0;
  while (done < size) {
    let text = "";
    while (text.length < 256 * 1024) {
      t += rnd(900);
      const ts = new Date(t).toISOString();
      const ip = `${rnd(223) + 1}.${rnd(256)}.${rnd(256)}.${rnd(256)}`;
      const kind = rnd(10);
      if (kind < 5) {
        text += `${ts} host-${rnd(40)} sshd[${1000 + rnd(60000)}]: Failed password for invalid user ${users[rnd(users.length)]} from ${ip} port ${1024 + rnd(64000)} ssh2\n`;
      } else if (kind < 9) {
        text += `${ip} - - [${ts}] "GET ${paths[rnd(paths.length)]}${rnd(2) ? rnd(100000) : ""} HTTP/1.1" ${[200, 200, 302, 404, 500][rnd(5)]} ${rnd(50000)} "-" "${agents[rnd(agents.length)]}" rt=${(rnd(2000) / 1000).toFixed(3)}\n`;
      } else {
        text += `${ts} host-${rnd(40)} kernel: [${rnd(900000)}.${rnd(1000000)}] nf_conntrack: table full, dropping packet SRC=${ip} DST=10.0.${rnd(256)}.${rnd(256)} PROTO=TCP SPT=${rnd(65536)} DPT=${[22, 80, 443, 3389][rnd(4)]}\n`;
      }
    }
    const bytes = Buffer.from(text.slice(0, Math.min(text.length, size - done)), "latin1");
    done += bytes.length;
    yield bytes;
  }
}

// ---------------------------------------------------------------------------------------------
// Attest, as a separate process
// ---------------------------------------------------------------------------------------------

function startAttest(databaseUrl: string, logFile: string): Promise<{ child: ChildProcess; url: string }> {
  const profile = process.env.BENCH_CPU_PROF
    ? ["--cpu-prof", "--cpu-prof-dir", path.resolve(process.env.BENCH_CPU_PROF)]
    : [];
  const child = spawn(process.execPath, [...profile, path.resolve(import.meta.dirname, "../src/main.ts")], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      PORT: "0",
      LOG_LEVEL: "info",
      ATTEST_MAX_UPLOAD_MB: String(Math.max(100, Math.ceil(EVIDENCE_MB / FILES) + 1)),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log = createWriteStream(logFile);
  child.stderr?.pipe(log);
  return new Promise((resolve, reject) => {
    let seen = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      log.write(chunk);
      seen += chunk.toString();
      const match = seen.match(/Attest is running at (http:\/\/\S+)/);
      if (match) {
        seen = "";
        resolve({ child, url: match[1] });
      } else if (seen.length > 1e6) {
        seen = seen.slice(-1000);
      }
    });
    child.once("exit", (code) => reject(new Error(`Attest exited with ${code} before it started; see ${logFile}`)));
  });
}

async function rssOf(pid: number): Promise<number> {
  const status = await fs.readFile(`/proc/${pid}/status`, "utf8");
  const kb = status.match(/VmRSS:\s+(\d+) kB/);
  return kb ? Number(kb[1]) * 1024 : 0;
}

/** Samples the RSS of `pid` every 20 ms while `fn` runs. */
async function withRss<T>(pid: number, fn: () => Promise<T>): Promise<{ result: T; before: number; peak: number }> {
  const before = await rssOf(pid);
  let peak = before;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await rssOf(pid).catch(() => 0));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  })();
  try {
    const result = await fn();
    return { result, before, peak: Math.max(peak, await rssOf(pid)) };
  } finally {
    sampling = false;
    await sampler;
  }
}

// ---------------------------------------------------------------------------------------------
// The run
// ---------------------------------------------------------------------------------------------

const name = `attest_bench_${randomBytes(4).toString("hex")}`;
const loadBefore = os
  .loadavg()
  .map((l) => l.toFixed(1))
  .join(" ");
const url = withDatabase(ADMIN, name);
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "attest-pack-e2e-"));
const filesDir = path.join(tmp, "evidence");
await fs.mkdir(filesDir);
let attest: ChildProcess | undefined;

try {
  // The evidence files, on disk: uploaded from here, and zipped from here.
  const sizes = Array.from({ length: FILES }, (_, i) => Math.floor((EVIDENCE_MB * MB) / FILES) + i);
  const files: string[] = [];
  for (const [i, size] of sizes.entries()) {
    const file = path.join(filesDir, i % 2 === 0 ? `disk-image-${i}.bin` : `access-${i}.log`);
    await pipeline(Readable.from(i % 2 === 0 ? randomContent(i, size) : logContent(i, size)), createWriteStream(file));
    files.push(file);
  }
  const total = sizes.reduce((a, b) => a + b, 0);

  out(`database        ${name} on ${new URL(ADMIN).host} (${EVIDENCE_MB} MB of evidence, ${RUNS} runs)`);
  const db = await prepareDatabase({ adminUrl: url, log: () => {} });
  const quiet = { debug() {}, info() {}, warn() {}, error() {} };
  const pools = createPools(db, quiet, { owner: 2, auth: 2 });
  await seedDemoWorkspace({ owner: pools.owner, auth: pools.auth, visitorRole: db.roles.visitor, log: () => {} });
  await pools.end();
  const serverVersion = await (async () => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    const { rows } = await c.query("show server_version");
    await c.end();
    return rows[0].server_version as string;
  })();

  const logFile = path.join(tmp, "attest.log");
  const started = await startAttest(url, logFile);
  attest = started.child;
  const base = started.url;
  const pid = attest.pid as number;

  // Sign in, make an API token.
  const login = await fetch(`${base}/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: base },
    body: new URLSearchParams({ email: "owner@demo.test", password: "attest-demo" }),
  });
  const cookie = login.headers
    .getSetCookie()
    .find((c) => c.startsWith("attest_session="))
    ?.split(";")[0];
  if (!cookie) throw new Error(`sign-in failed: ${login.status}`);
  const gql = async <T>(query: string, variables: Record<string, unknown>, auth: Record<string, string>) => {
    const response = await fetch(`${base}/graphql`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Tenant": "demo", ...auth },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { data?: T; errors?: Array<{ message: string }> };
    if (body.errors?.length || !body.data) throw new Error(`GraphQL: ${JSON.stringify(body.errors)}`);
    return body.data;
  };
  const tokenData = await gql<{ createApiToken: { result: { token: string } } }>(
    `mutation { createApiToken(input: { name: "bench" }) { result { token } } }`,
    {},
    { Cookie: cookie, Origin: base },
  );
  const bearer = { Authorization: `Bearer ${tokenData.createApiToken.result.token}` };

  const { createIncident } = await gql<{ createIncident: { incident: { rowId: string } } }>(
    `mutation { createIncident(input: { incident: { title: "Pack bench", severity: "high" } }) { incident { rowId } } }`,
    {},
    bearer,
  );
  const incidentId = createIncident.incident.rowId;

  // Upload, one file per request (as a browser's multi-file upload would be, file by file).
  const uploadStart = performance.now();
  for (const file of files) {
    const form = new FormData();
    form.append("file", await openAsBlob(file), path.basename(file));
    const response = await fetch(`${base}/api/incidents/${incidentId}/evidence`, {
      method: "POST",
      headers: { ...bearer, "X-Tenant": "demo" },
      body: form,
    });
    if (response.status !== 201) throw new Error(`upload of ${file}: ${response.status} ${await response.text()}`);
  }
  const uploadSeconds = (performance.now() - uploadStart) / 1000;

  const packOnce = async () => {
    const t0 = performance.now();
    const { createExport } = await gql<{ createExport: { export: { rowId: string } } }>(
      `mutation ($id: UUID!) { createExport(input: { export: { incidentId: $id } }) { export { rowId } } }`,
      { id: incidentId },
      bearer,
    );
    const exportId = createExport.export.rowId;
    for (;;) {
      const { exportByRowId: e } = await gql<{
        exportByRowId: { status: string; error: string | null; zipSize: string | null };
      }>(`query ($id: UUID!) { exportByRowId(rowId: $id) { status error zipSize } }`, { id: exportId }, bearer);
      if (e.status === "ready")
        return { exportId, seconds: (performance.now() - t0) / 1000, zipSize: Number(e.zipSize) };
      if (e.status === "failed") throw new Error(`the pack failed: ${e.error}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  };
  const zipOnce = async () => {
    const target = path.join(tmp, "zip6.zip");
    await fs.rm(target, { force: true });
    const t0 = performance.now();
    await run("zip", ["-6", "-r", "-q", target, path.basename(filesDir)], { cwd: tmp });
    const seconds = (performance.now() - t0) / 1000;
    const { size } = await fs.stat(target);
    await fs.rm(target, { force: true });
    return { seconds, size };
  };

  const packs: Array<{ seconds: number; growth: number; before: number; zipSize: number; exportId: string }> = [];
  const zips: Array<{ seconds: number; size: number }> = [];
  for (let r = 0; r < RUNS; r++) {
    const steps = [
      async () => {
        const m = await withRss(pid, packOnce);
        packs.push({ ...m.result, growth: m.peak - m.before, before: m.before });
      },
      async () => {
        zips.push(await zipOnce());
      },
    ];
    if (r % 2 === 1) steps.reverse();
    for (const step of steps) await step();
    const p = packs[packs.length - 1];
    const z = zips[zips.length - 1];
    out(
      `run ${r + 1}           pack ${p.seconds.toFixed(2)} s (RSS ${(p.before / MB).toFixed(0)} MB +${(p.growth / MB).toFixed(0)} MB), zip -6 ${z.seconds.toFixed(2)} s${r % 2 === 1 ? " (zip first)" : ""}`,
    );
  }

  // The last pack, downloaded and verified offline.
  const last = packs[packs.length - 1];
  const zipPath = path.join(tmp, "pack.zip");
  const download = await fetch(`${base}/api/exports/${last.exportId}/pack.zip`, {
    headers: { ...bearer, "X-Tenant": "demo" },
  });
  if (download.status !== 200 || !download.body) throw new Error(`download: ${download.status}`);
  await pipeline(Readable.fromWeb(download.body as never), createWriteStream(zipPath));
  const verdict = await verifyPack(zipPath);
  if (!verdict.ok) throw new Error(`the pack does not verify: ${verdict.check}: ${verdict.message}`);

  const builds = (await fs.readFile(logFile, "utf8")).match(/waited for the seal [^)]*/g) ?? [];
  for (const [i, line] of builds.entries()) out(`build ${i + 1}         ${line}`);

  const packSeconds = median(packs.map((p) => p.seconds));
  const zipSeconds = median(zips.map((z) => z.seconds));
  const ratio = zipSeconds / packSeconds;
  const growth = Math.max(...packs.map((p) => p.growth)) / MB;
  const w = (s: string, n: number) => s.padEnd(n);
  out("");
  out(
    `evidence: ${(total / MB).toFixed(0)} MB in ${FILES} files (half random, half log text), uploaded in ${uploadSeconds.toFixed(1)} s; PostgreSQL ${serverVersion}; ${os.cpus().length} cores`,
  );
  out(
    `load average ${loadBefore} before, ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")} after (other work on the machine slows both sides; a pack uses several processes, zip one)`,
  );
  out(
    `pack: ${(last.zipSize / MB).toFixed(1)} MB, verifies (${verdict.summary.entries} entries, ${verdict.summary.files} files); zip -6: ${(zips[0].size / MB).toFixed(1)} MB`,
  );
  out("");
  out(`${w("measure", 40)}${w("median", 14)}${w("runs", 30)}target`);
  out(
    `${w("pack, request → ready", 40)}${w(`${packSeconds.toFixed(2)} s`, 14)}${w(packs.map((p) => p.seconds.toFixed(2)).join(" "), 30)}`,
  );
  out(
    `${w("zip -6 -r, same files", 40)}${w(`${zipSeconds.toFixed(2)} s`, 14)}${w(zips.map((z) => z.seconds.toFixed(2)).join(" "), 30)}`,
  );
  out(
    `${w("rate: zip -6 time ÷ pack time", 40)}${w(`${ratio.toFixed(2)}×`, 14)}${w("", 30)}≥ ${TARGET_RATIO}× ${ratio >= TARGET_RATIO ? "MET" : "NOT MET"}`,
  );
  out(
    `${w("Attest RSS growth (server + worker)", 40)}${w(`${growth.toFixed(0)} MB`, 14)}${w(packs.map((p) => `+${(p.growth / MB).toFixed(0)}`).join(" "), 30)}≤ ${TARGET_GROWTH_MB} MB ${growth <= TARGET_GROWTH_MB ? "MET" : "NOT MET"} (max of runs)`,
  );
} finally {
  if (attest && attest.exitCode === null) {
    const exited = new Promise((resolve) => attest?.once("exit", resolve));
    attest.kill("SIGTERM");
    await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000))]);
    if (attest.exitCode === null) attest.kill("SIGKILL");
  }
  await fs.rm(tmp, { recursive: true, force: true });
  if (!process.env.BENCH_KEEP) {
    const admin = new pg.Client({ connectionString: ADMIN });
    await admin.connect();
    await admin.query(`drop database if exists "${name}" with (force)`);
    const roles = await admin.query<{ rolname: string }>("select rolname from pg_roles where rolname like $1", [
      `${name}\\_%`,
    ]);
    for (const { rolname } of roles.rows) await admin.query(`drop role if exists "${rolname}"`);
    await admin.end();
  }
}
