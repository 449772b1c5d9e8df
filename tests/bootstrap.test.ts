/**
 * Bootstrap: the embedded PostgreSQL survives restarts and kills, an external DATABASE_URL is set
 * up when its role may do so and otherwise answered with the exact SQL a DBA must run, and
 * `npm start`'s process serves /healthz and shuts down cleanly.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { startEmbeddedPostgres } from "../src/db/embedded.ts";
import { prepareDatabase, SetupRequiredError, withDatabase } from "../src/db/setup.ts";
import { createTestDatabase, existingServer, servers } from "./helpers/db.ts";
import { freePort } from "./helpers/net.ts";

const root = path.resolve(import.meta.dirname, "..");

async function tempDataDir(): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-test-data-"));
  await fs.chmod(dir, 0o755);
  return dir;
}

async function dropByPrefix(adminUrl: string, prefix: string) {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const dbs = await admin.query<{ datname: string }>("select datname from pg_database where datname like $1", [
      `${prefix}%`,
    ]);
    for (const { datname } of dbs.rows) await admin.query(`drop database "${datname}" with (force)`);
    const roles = await admin.query<{ rolname: string }>("select rolname from pg_roles where rolname like $1", [
      `${prefix}%`,
    ]);
    for (const { rolname } of roles.rows) await admin.query(`drop role "${rolname}"`);
  } finally {
    await admin.end();
  }
}

/** Runs the SQL Attest printed for a DBA, statement by statement, as `client`. */
async function runAsDba(client: pg.Client, sql: string) {
  for (const statement of sql.split("\n").filter((line) => line && !line.startsWith("--"))) {
    await client.query(statement);
  }
}

/** The DATABASE_URL and AUTH_DATABASE_URL a SetupRequiredError printed, with the host and port of `server`. */
function printedEnv(message: string, server: URL): Record<string, string> {
  return Object.fromEntries(
    message
      .split("\n")
      .filter((l) => /^[A-Z_]+=postgres:/.test(l))
      .map((l) => {
        const [key, value] = l.split(/=(.*)/s);
        return [key, new URL(value.replace("<host>:<port>", `${server.hostname}:${server.port || 5432}`)).toString()];
      }),
  );
}

describe("embedded PostgreSQL", () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await fs.rm(dir, { recursive: true, force: true });
  });

  it("keeps its data across a stop and a start, and reuses a server that is still running", async () => {
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const port = await freePort();
    const logs: string[] = [];
    const first = await startEmbeddedPostgres({ dataDir, port, log: (m) => logs.push(m) });
    try {
      const client = new pg.Client({ connectionString: first.url("postgres") });
      await client.connect();
      await client.query("create table kept (note text); insert into kept values ('still here')");
      await client.end();
      // A second start while it runs (as after a killed Attest) reuses the running server.
      const again = await startEmbeddedPostgres({ dataDir, port, log: (m) => logs.push(m) });
      expect(again.port).toBe(first.port);
      expect(logs.some((m) => m.startsWith("Reusing"))).toBe(true);
    } finally {
      await first.stop();
    }
    const restarted = await startEmbeddedPostgres({ dataDir, port, log: () => {} });
    try {
      const client = new pg.Client({ connectionString: restarted.url("postgres") });
      await client.connect();
      const { rows } = await client.query("select note from kept");
      await client.end();
      expect(rows).toEqual([{ note: "still here" }]);
    } finally {
      await restarted.stop();
    }
  });

  it("two starts at once on a new data directory: one creates the cluster, the other waits and reuses it", async () => {
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const port = await freePort();
    const logs: string[][] = [[], []];
    const [a, b] = await Promise.all(
      logs.map((log) => startEmbeddedPostgres({ dataDir, port, log: (m) => log.push(m) })),
    );
    try {
      expect([a.startedHere, b.startedHere].sort()).toEqual([false, true]);
      expect(b.url("postgres")).toBe(a.url("postgres"));
      const waited = logs[a.startedHere ? 1 : 0];
      expect(waited.some((m) => m.startsWith("Another Attest is creating or starting the embedded PostgreSQL"))).toBe(
        true,
      );
      expect(waited.some((m) => m.startsWith("Reusing"))).toBe(true);
      const client = new pg.Client({ connectionString: b.url("postgres") });
      await client.connect();
      expect((await client.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
      await client.end();
    } finally {
      await (a.startedHere ? a : b).stop();
    }
  });
});

describe.each(servers())("external database on $name", (server) => {
  const prefix = `attest_test_${randomBytes(4).toString("hex")}`;
  afterAll(async () => {
    await dropByPrefix(server.adminUrl, prefix);
  });

  it("a role that may not create roles or databases gets the exact SQL to run, and that SQL works", async () => {
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    const password = randomBytes(8).toString("hex");
    await admin.query(`create role "${prefix}_app" login password '${password}'`);
    const plain = new URL(withDatabase(server.adminUrl, `${prefix}_db`));
    plain.username = `${prefix}_app`;
    plain.password = password;

    const error = await prepareDatabase({ adminUrl: plain.toString(), log: () => {} }).catch((e) => e);
    expect(error).toBeInstanceOf(SetupRequiredError);
    expect(error.message).toContain(`may not create role ${prefix}_db_owner`);
    expect(error.message).toContain(`database ${prefix}_db`);
    expect(error.sql).toContain(`CREATE DATABASE "${prefix}_db" OWNER "${prefix}_db_owner";`);

    // The DBA runs it as printed...
    await runAsDba(admin, error.sql);
    await admin.end();
    // ...and Attest starts with the URLs it printed.
    const env = printedEnv(error.message, plain);
    expect(Object.keys(env).sort()).toEqual(["AUTH_DATABASE_URL", "DATABASE_URL"]);
    const db = await prepareDatabase({ adminUrl: env.DATABASE_URL, authUrl: env.AUTH_DATABASE_URL, log: () => {} });
    const client = new pg.Client({ connectionString: db.authUrl });
    await client.connect();
    const { rows } = await client.query("select current_user as me");
    await client.end();
    expect(rows[0].me).toBe(`${prefix}_db_authenticator`);
  });

  it("a database a DBA created beforehand (owned by the superuser) is set up: the owner role is granted what it needs", async () => {
    const databaseName = `${prefix}_precreated`;
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    await admin.query(`create database "${databaseName}"`);
    await admin.end();
    const logs: string[] = [];
    const db = await prepareDatabase({
      adminUrl: withDatabase(server.adminUrl, databaseName),
      log: (m) => logs.push(m),
    });
    expect(logs.join("\n")).toContain(`Database ${databaseName} was created by another role`);
    const client = new pg.Client({ connectionString: db.authUrl });
    await client.connect();
    await client.query(`set role "${databaseName}_visitor"`);
    const { rows } = await client.query("select session_user as me, count(*)::int as tenants from app_public.tenants");
    await client.end();
    expect(rows[0]).toEqual({ me: `${databaseName}_authenticator`, tenants: 0 });
    // Started again, it has nothing more to grant.
    const again: string[] = [];
    await prepareDatabase({ adminUrl: withDatabase(server.adminUrl, databaseName), log: (m) => again.push(m) });
    expect(again.join("\n")).not.toContain("was created by another role");
  });

  it("a plain login on a database created beforehand gets SQL that lets the owner role create in it, and that SQL works", async () => {
    const databaseName = `${prefix}_predba`;
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    const password = randomBytes(8).toString("hex");
    await admin.query(`create role "${prefix}_pre" login password '${password}'`);
    await admin.query(`create database "${databaseName}"`);
    await admin.end();
    const plain = new URL(withDatabase(server.adminUrl, databaseName));
    plain.username = `${prefix}_pre`;
    plain.password = password;

    const error = await prepareDatabase({ adminUrl: plain.toString(), log: () => {} }).catch((e) => e);
    expect(error).toBeInstanceOf(SetupRequiredError);
    expect(error.sql).toContain(`connected to database ${databaseName}`);
    expect(error.sql).toContain(`GRANT CREATE ON DATABASE "${databaseName}" TO "${databaseName}_owner";`);
    expect(error.sql).toContain(`GRANT CREATE ON SCHEMA public TO "${databaseName}_owner";`);
    // The DBA runs it as printed, connected to that database...
    const dba = new pg.Client({ connectionString: withDatabase(server.adminUrl, databaseName) });
    await dba.connect();
    await runAsDba(dba, error.sql);
    await dba.end();
    // ...and Attest starts with the URLs it printed, logging in as the owner role.
    const env = printedEnv(error.message, plain);
    const db = await prepareDatabase({ adminUrl: env.DATABASE_URL, authUrl: env.AUTH_DATABASE_URL, log: () => {} });
    const client = new pg.Client({ connectionString: db.authUrl });
    await client.connect();
    await client.query(`set role "${databaseName}_visitor"`);
    const { rows } = await client.query("select count(*)::int as tenants from app_public.tenants");
    await client.end();
    expect(rows[0].tenants).toBe(0);
  });

  it("a login that may not grant on a database created beforehand, whose roles exist, is told which GRANTs to ask for", async () => {
    const databaseName = `${prefix}_pregrant`;
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    const password = randomBytes(8).toString("hex");
    await admin.query(`create role "${databaseName}_owner" login password '${password}'`);
    for (const role of ["visitor", "reporting", "audit", "sealer"])
      await admin.query(`create role "${databaseName}_${role}"`);
    await admin.query(`create role "${databaseName}_authenticator" login noinherit`);
    await admin.query(`create database "${databaseName}"`);
    await admin.end();
    const asOwner = new URL(withDatabase(server.adminUrl, databaseName));
    asOwner.username = `${databaseName}_owner`;
    asOwner.password = password;
    const error = await prepareDatabase({ adminUrl: asOwner.toString(), log: () => {} }).catch((e) => e);
    expect(error).toBeInstanceOf(SetupRequiredError);
    expect(error.message).toContain(`may not create Attest's schemas in it`);
    expect(error.sql).toContain(`GRANT CREATE ON DATABASE "${databaseName}" TO "${databaseName}_owner";`);
  });

  it("two Attest processes setting up one new database at once both start, one after the other", async () => {
    const adminUrl = withDatabase(server.adminUrl, `${prefix}_together`);
    const logs: string[][] = [[], []];
    const [a, b] = await Promise.all(logs.map((log) => prepareDatabase({ adminUrl, log: (m) => log.push(m) })));
    // One set the authenticator's password and the other found it: both log in with it.
    expect(b.authUrl).toBe(a.authUrl);
    const client = new pg.Client({ connectionString: a.authUrl });
    await client.connect();
    const { rows } = await client.query("select current_user as me");
    await client.end();
    expect(rows[0].me).toBe(`${prefix}_together_authenticator`);
    // The migrations ran once: one process executed them, the other found none to run.
    const executed = logs.flat().filter((m) => /committed migrations executed/.test(m));
    expect(executed).toHaveLength(1);

    // While another process holds the setup lock, a third waits, says so, and goes on when it ends.
    const holder = new pg.Client({ connectionString: adminUrl });
    await holder.connect();
    await holder.query("select pg_advisory_lock(hashtext('attest:setup'))");
    const waiting: string[] = [];
    let done = false;
    const third = prepareDatabase({ adminUrl, log: (m) => waiting.push(m) }).then((db) => {
      done = true;
      return db;
    });
    await expect.poll(() => waiting.join("\n"), { timeout: 10_000 }).toContain("Another Attest is setting up database");
    expect(done).toBe(false);
    await holder.end();
    expect((await third).authUrl).toBe(a.authUrl);
  });

  it("setting up an already migrated database again changes nothing", async () => {
    const t = await createTestDatabase(server);
    try {
      const again = await prepareDatabase({ adminUrl: t.superUrl, log: () => {} });
      expect(again.authUrl).toBe(t.db.authUrl);
      expect(again.roles).toEqual(t.db.roles);
    } finally {
      await t.drop();
    }
  });
});

/** Runs `node src/main.ts` like `npm start` does and waits until it is up. */
class AttestProcess {
  child: ChildProcess;
  output = "";
  constructor(env: NodeJS.ProcessEnv, command: string[] = [process.execPath, "src/main.ts"]) {
    this.child = spawn(command[0], command.slice(1), {
      cwd: root,
      env: { ...process.env, DATABASE_URL: "", AUTH_DATABASE_URL: "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    this.child.stdout?.on("data", (d) => {
      this.output += d;
    });
    this.child.stderr?.on("data", (d) => {
      this.output += d;
    });
  }
  async ready(): Promise<string> {
    for (let i = 0; i < 600; i++) {
      const match = this.output.match(/Attest is running at (\S+)/);
      if (match) return match[1];
      if (this.child.exitCode !== null) throw new Error(`Attest exited early:\n${this.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`Attest did not start:\n${this.output}`);
  }
  exited(): Promise<number | null> {
    if (this.child.exitCode !== null) return Promise.resolve(this.child.exitCode);
    return new Promise((resolve) => this.child.once("exit", (code) => resolve(code)));
  }
}

describe("npm start", () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup();
  });

  it("runs on the embedded database: seeds once, survives kill -9, stops cleanly on SIGTERM", async () => {
    const dataDir = await tempDataDir();
    const env = {
      ATTEST_DATA_DIR: dataDir,
      PORT: String(await freePort()),
      ATTEST_EMBEDDED_PG_PORT: String(await freePort()),
    };
    cleanups.push(async () => {
      // Whatever happened, stop the cluster and remove the data.
      const state = JSON.parse(
        await fs.readFile(path.join(dataDir, "embedded-postgres.json"), "utf8").catch(() => "{}"),
      );
      if (state.port) {
        const cluster = await startEmbeddedPostgres({ dataDir, port: state.port, log: () => {} }).catch(() => null);
        await cluster?.stop().catch(() => {});
      }
      await fs.rm(dataDir, { recursive: true, force: true });
    });
    const auditCount = async () => {
      const state = JSON.parse(await fs.readFile(path.join(dataDir, "embedded-postgres.json"), "utf8"));
      const client = new pg.Client({
        connectionString: `postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/attest`,
      });
      await client.connect();
      const { rows } = await client.query("select count(*)::int as n from app_public.audit_log");
      await client.end();
      return rows[0].n as number;
    };

    const first = new AttestProcess(env);
    const url = await first.ready();
    expect(first.output).toContain("owner@demo.test");
    expect(first.output).toContain('password "attest-demo"');
    const firstHealth = await fetch(`${url}/healthz`).catch((error) => {
      throw new Error(`${(error as Error).message}: ${(error as { cause?: Error }).cause?.message}\n${first.output}`);
    });
    expect(firstHealth.status, `${await firstHealth.clone().text()}\n${first.output}`).toBe(200);
    const entries = await auditCount();
    expect(entries).toBeGreaterThan(200);

    first.child.kill("SIGKILL");
    await first.exited();

    const second = new AttestProcess(env);
    await second.ready();
    expect(second.output).toContain("Reusing the embedded PostgreSQL");
    expect(second.output).not.toContain("Seeding");
    const health = await fetch(`${url}/healthz`).catch((error) => {
      // (Once seen under the whole suite's load: say what the restarted process printed.)
      throw new Error(`${(error as Error).message}: ${(error as { cause?: Error }).cause?.message}\n${second.output}`);
    });
    expect(health.status, `${await health.clone().text()}\n${second.output}`).toBe(200);
    expect(health.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
    expect(await auditCount()).toBe(entries);

    second.child.kill("SIGTERM");
    expect(await second.exited()).toBe(0);
    expect(second.output).toContain("Stopped worker");
    expect(second.output).toContain("Stopped embedded PostgreSQL");
    await expect(auditCount()).rejects.toThrow(/ECONNREFUSED/);

    // A cold start of the stopped cluster keeps everything; /healthz reports a lost database.
    const third = new AttestProcess(env);
    await third.ready();
    expect(await auditCount()).toBe(entries);
    const state = JSON.parse(await fs.readFile(path.join(dataDir, "embedded-postgres.json"), "utf8"));
    const cluster = await startEmbeddedPostgres({ dataDir, port: state.port, log: () => {} });
    await cluster.stop();
    expect((await fetch(`${url}/healthz`)).status).toBe(503);
    third.child.kill("SIGINT");
    expect(await third.exited()).toBe(0);
  });

  it("uses DATABASE_URL when set and never seeds demo data into it", async () => {
    // The "existing Postgres" of the README: ATTEST_TEST_PG_URL when given, else embedded 15.
    const existing = existingServer();
    const name = `attest_test_${randomBytes(4).toString("hex")}`;
    cleanups.push(() => dropByPrefix(existing.adminUrl, name));
    // Through `npm start` itself: a SIGTERM to npm must reach Attest.
    const proc = new AttestProcess(
      { DATABASE_URL: withDatabase(existing.adminUrl, name), PORT: String(await freePort()) },
      ["npm", "start", "--silent"],
    );
    const url = await proc.ready();
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    expect(proc.output).not.toContain("demo logins");
    proc.child.kill("SIGTERM");
    await proc.exited();
    for (let i = 0; i < 100 && !proc.output.includes("Stopped database pools"); i++)
      await new Promise((r) => setTimeout(r, 100));
    expect(proc.output).toContain("Stopped worker");
    expect(proc.output).toContain("Stopped database pools");
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    const client = new pg.Client({ connectionString: withDatabase(existing.adminUrl, name) });
    await client.connect();
    const { rows } = await client.query("select count(*)::int as n from app_public.tenants");
    await client.end();
    expect(rows[0].n).toBe(0);
  });
});
