/**
 * `npm start` as a person runs it in a terminal: a second `npm start` on a busy port fails without
 * touching the first (nor its embedded PostgreSQL), and Ctrl-C — SIGINT to the whole process
 * group, which npm forwards a second time — stops everything in order, embedded PostgreSQL included.
 */
import { type ChildProcess, spawn } from "node:child_process";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../helpers/net.ts";

const root = path.resolve(import.meta.dirname, "../..");

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function npmStart(env: Record<string, string>): Started {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env, LOG_LEVEL: "info" };
  delete childEnv.DATABASE_URL;
  delete childEnv.AUTH_DATABASE_URL;
  // Its own process group, like a terminal's foreground job: a signal to -pid reaches npm and node.
  const child = spawn("npm", ["start"], {
    cwd: root,
    env: childEnv,
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function until(check: () => boolean | Promise<boolean>, ms: number, describe: () => string) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out:\n${describe()}`);
}

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });

describe("npm start in a terminal", () => {
  let dataDir: string;
  let httpPort: number;
  let pgPort: number;
  const started: Started[] = [];

  beforeAll(async () => {
    dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-start-"));
    await fs.chmod(dataDir, 0o755); // the embedded PostgreSQL may run as another OS user
    httpPort = await freePort();
    pgPort = await freePort();
  });
  afterAll(async () => {
    // Whatever a failed assertion left behind: our own process groups, and our own PostgreSQL.
    for (const s of started) {
      if (s.child.exitCode === null && s.child.signalCode === null && s.child.pid) {
        try {
          process.kill(-s.child.pid, "SIGKILL");
        } catch {}
      }
    }
    const pid = Number.parseInt(
      (await fs.readFile(path.join(dataDir, "postgres", "postmaster.pid"), "utf8").catch(() => "")).split("\n")[0],
      10,
    );
    if (pid > 0) {
      try {
        process.kill(pid, "SIGQUIT");
      } catch {}
    }
    await fs.rm(dataDir, { recursive: true, force: true });
  });

  it("a second npm start on a busy port leaves the first intact; Ctrl-C stops everything, PostgreSQL last", async () => {
    const env = { PORT: String(httpPort), ATTEST_EMBEDDED_PG_PORT: String(pgPort), ATTEST_DATA_DIR: dataDir };
    const first = npmStart(env);
    started.push(first);
    await until(() => first.output().includes("Attest is running at"), 150_000, first.output);
    expect(await portOpen(pgPort)).toBe(true);
    // The banner names the GraphQL endpoint and its explorer.
    expect(first.output()).toContain(`http://127.0.0.1:${httpPort}/graphiql`);

    const second = npmStart(env);
    started.push(second);
    const code = await second.exited;
    expect(code, second.output()).not.toBe(0);
    expect(second.output()).toMatch(/already in use/);
    expect(second.output()).not.toMatch(/Stopped embedded PostgreSQL/);
    // The first still serves, on its database.
    expect(await portOpen(pgPort)).toBe(true);
    const health = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok", database: "reachable" });

    // Ctrl-C: SIGINT to the process group (npm and node), and npm forwards it once more.
    process.kill(-(first.child.pid as number), "SIGINT");
    const exitCode = await Promise.race([
      first.exited,
      new Promise<"hung">((r) => setTimeout(() => r("hung"), 60_000)),
    ]);
    expect(exitCode, first.output()).not.toBe("hung");
    const output = first.output();
    expect(output).not.toMatch(/Forced exit/);
    expect(output).toMatch(/Stopped embedded PostgreSQL/);
    expect(output.indexOf("Stopped worker")).toBeLessThan(output.indexOf("Stopped embedded PostgreSQL"));
    await until(
      async () => !(await portOpen(pgPort)),
      10_000,
      () => "PostgreSQL still accepts connections",
    );
    // The demo pack was built once, by a worker that was never declared dead while it worked.
    expect(output).not.toMatch(/Unlocked the jobs/);
  }, 240_000);
});
