/**
 * Configuration: every setting Attest reads from the environment, read once at start.
 * Owns parsing and validation of environment variables; nothing else in the code reads process.env.
 */
import { availableParallelism } from "node:os";
import path from "node:path";

export interface Config {
  /** Admin/owner connection used to set up and migrate; unset means the embedded PostgreSQL. */
  databaseUrl: string | undefined;
  /** The server's connection as the authenticator role; derived when unset. */
  authDatabaseUrl: string | undefined;
  /** Prefix of the database role names; defaults to the database name. */
  roleprefix: string | undefined;
  host: string;
  port: number;
  dataDir: string;
  embeddedPgPort: number;
  workerConcurrency: number;
  /** The server's database connections (the authenticator pool): at most this many statements at once. */
  serverPoolSize: number;
  maxUploadBytes: number;
  trustProxy: boolean;
  audit: { logOrigin: string; sealIntervalMs: number; checkpointIntervalMs: number };
  webhooks: { allowPrivate: boolean; timeoutMs: number; maxFailures: number; maxResponseBytes: number };
  logLevel: "debug" | "info" | "warn" | "error";
}

export class ConfigError extends Error {}

function intSetting(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
  }
  return value;
}

function urlSetting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a valid URL; expected postgres://user:password@host:5432/database`);
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new ConfigError(`${name} must start with postgres:// (got "${url.protocol}")`);
  }
  if (url.pathname.length <= 1) {
    throw new ConfigError(`${name} must name a database, e.g. postgres://user@host:5432/attest`);
  }
  return raw;
}

/** The origin prefix of the tenants' logs in their checkpoints: `<prefix>/audit/<tenant id>`. */
function logOriginSetting(env: NodeJS.ProcessEnv): string {
  const raw = env.ATTEST_LOG_ORIGIN || "attest.localhost";
  if (!/^[A-Za-z0-9._~:/-]{1,200}$/.test(raw)) {
    throw new ConfigError(
      "ATTEST_LOG_ORIGIN must be a schema-less URL such as attest.example.com (no spaces or plus signs)",
    );
  }
  return raw.replace(/\/+$/, "");
}

/**
 * Twice the CPUs. The server's statements are short and its connections are taken for one
 * statement (or one short transaction) at a time, so a few busy backends serve the most requests:
 * on a 2-core machine with PostgreSQL beside Attest, 3 or 4 connections served ~10% more API
 * requests a second than 10, and each request cost PostgreSQL ~20% less CPU (src/audit/DESIGN.md,
 * "Fewer server connections").
 */
export function defaultServerPoolSize(): number {
  return 2 * availableParallelism();
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const logLevel = env.LOG_LEVEL ?? "info";
  if (!["debug", "info", "warn", "error"].includes(logLevel)) {
    throw new ConfigError(`LOG_LEVEL must be debug, info, warn or error (got "${logLevel}")`);
  }
  const roleprefix = env.ATTEST_DB_ROLE_PREFIX || undefined;
  if (roleprefix !== undefined && !/^[a-z_][a-z0-9_]{0,40}$/.test(roleprefix)) {
    throw new ConfigError("ATTEST_DB_ROLE_PREFIX must be lower case letters, digits and underscores (at most 41)");
  }
  return {
    databaseUrl: urlSetting(env, "DATABASE_URL"),
    authDatabaseUrl: urlSetting(env, "AUTH_DATABASE_URL"),
    roleprefix,
    host: env.HOST || "127.0.0.1",
    port: intSetting(env, "PORT", 3000, 0, 65535),
    dataDir: path.resolve(env.ATTEST_DATA_DIR || ".data"),
    embeddedPgPort: intSetting(env, "ATTEST_EMBEDDED_PG_PORT", 54329, 1024, 65535),
    workerConcurrency: intSetting(env, "ATTEST_WORKER_CONCURRENCY", 2, 1, 32),
    serverPoolSize: intSetting(env, "ATTEST_DB_POOL_SIZE", defaultServerPoolSize(), 1, 1000),
    maxUploadBytes: intSetting(env, "ATTEST_MAX_UPLOAD_MB", 100, 1, 10_240) * 1024 * 1024,
    trustProxy: env.ATTEST_TRUST_PROXY === "true",
    audit: {
      logOrigin: logOriginSetting(env),
      sealIntervalMs: intSetting(env, "ATTEST_SEAL_INTERVAL_MS", 200, 10, 60_000),
      checkpointIntervalMs: intSetting(env, "ATTEST_CHECKPOINT_INTERVAL_MS", 1000, 0, 60_000),
    },
    webhooks: {
      allowPrivate: env.ATTEST_WEBHOOKS_ALLOW_PRIVATE === "true",
      timeoutMs: intSetting(env, "ATTEST_WEBHOOK_TIMEOUT_MS", 10_000, 100, 120_000),
      maxFailures: intSetting(env, "ATTEST_WEBHOOK_MAX_FAILURES", 10, 1, 1000),
      maxResponseBytes: 64 * 1024,
    },
    logLevel: logLevel as Config["logLevel"],
  };
}
