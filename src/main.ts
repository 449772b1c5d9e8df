/**
 * `npm start`: the whole product in one process. Sets up and migrates the database (embedded
 * PostgreSQL under .data/ when DATABASE_URL is unset, seeded with the demo workspace), then runs
 * the graphile-worker runner and the HTTP server. SIGINT/SIGTERM stop it in reverse order:
 * server, worker (drains running jobs), pools, embedded PostgreSQL.
 */
import "./env-defaults.ts";

import { startWorker } from "../worker/index.ts";
import { activeSigningKey } from "./audit/keys.ts";
import { ConfigError, loadConfig } from "./config.ts";
import { bootstrapDatabase } from "./db/bootstrap.ts";
import { createPools } from "./db/pools.ts";
import { DEMO_LOGINS, DEMO_PASSWORD, isSeeded, seedDemoWorkspace } from "./db/seed.ts";
import { SetupRequiredError } from "./db/setup.ts";
import { createGraphQL } from "./graphql/index.ts";
import { createLogger } from "./log.ts";
import { formatFingerprint } from "./packs/format.ts";
import { createApp, startServer } from "./web/server.ts";

const config = (() => {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`Configuration error: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
})();
const log = createLogger(config.logLevel);

/** Shutdown steps, run last-registered first. */
const stack: Array<{ name: string; run: () => Promise<unknown> }> = [];
let stopping: Promise<never> | undefined;
let stoppingSince = 0;
/** Stops the embedded PostgreSQL when this process is in charge of it. */
let stopEmbedded: (() => Promise<void>) | undefined;
/** A signal this long after shutdown began (a step that hangs) forces the exit. */
const FORCE_AFTER_MS = 30_000;

/**
 * Stops everything in order, once. Ctrl-C in a terminal delivers SIGINT twice (to the whole
 * process group, and again forwarded by npm): a signal during shutdown only says so, it never
 * cuts the shutdown short (the embedded PostgreSQL must still be stopped).
 */
function shutdown(reason: string, exitCode: number): Promise<never> {
  if (stopping) {
    if (Date.now() - stoppingSince < FORCE_AFTER_MS) {
      log.info(`Already shutting down (${reason}); waiting for it to finish`);
      return stopping;
    }
    log.warn(`Shutdown has taken over ${FORCE_AFTER_MS / 1000} s; forcing the exit (${reason})`);
    void (stopEmbedded?.() ?? Promise.resolve()).finally(() => process.exit(exitCode || 130));
    return stopping;
  }
  stoppingSince = Date.now();
  stopping = (async () => {
    log.info(`Shutting down (${reason})`);
    for (const step of stack.reverse()) {
      try {
        await step.run();
        log.info(`Stopped ${step.name}`);
      } catch (error) {
        log.warn(`Could not stop ${step.name} cleanly`, { error: (error as Error).message });
      }
    }
    process.exit(exitCode);
  })();
  return stopping;
}

process.on("SIGINT", () => void shutdown("SIGINT", 0));
process.on("SIGTERM", () => void shutdown("SIGTERM", 0));

async function main() {
  // Only a PostgreSQL that this process is in charge of is stopped (not one another Attest uses).
  const { db, embedded } = await bootstrapDatabase(config, log, (cluster) => {
    if (!cluster.owned) return;
    stopEmbedded = () => cluster.stop();
    stack.push({ name: "embedded PostgreSQL", run: () => cluster.stop() });
  });
  const pools = createPools(db, log, { owner: 5, auth: config.serverPoolSize });
  stack.push({ name: "database pools", run: () => pools.end() });

  let demo = false;
  if (embedded) {
    await seedDemoWorkspace({
      owner: pools.owner,
      auth: pools.auth,
      visitorRole: db.roles.visitor,
      log: (m) => log.info(m),
    });
    demo = true;
  } else {
    demo = await isSeeded(pools.owner);
  }
  if (stopping) return;
  const signingKey = await activeSigningKey(pools.owner);

  const worker = await startWorker({
    pgPool: pools.owner,
    concurrency: config.workerConcurrency,
    log,
    webhooks: config.webhooks,
    sealer: {
      pool: pools.sealer,
      originPrefix: config.audit.logOrigin,
      intervalMs: config.audit.sealIntervalMs,
      checkpointEveryMs: config.audit.checkpointIntervalMs,
    },
  });
  stack.push({ name: "worker", run: () => worker.stop() });

  const app = createApp({
    authPool: pools.auth,
    visitorRole: db.roles.visitor,
    log,
    maxUploadBytes: config.maxUploadBytes,
    trustProxy: config.trustProxy,
    webhooksAllowPrivate: config.webhooks.allowPrivate,
  });
  const graphql = createGraphQL({ authPool: pools.auth, visitorRole: db.roles.visitor, log });
  stack.push({ name: "GraphQL", run: () => graphql.release() });
  const server = await startServer(app, config.host, config.port, (http) => graphql.addTo(app, http)).catch((error) => {
    if ((error as { code?: string }).code === "EADDRINUSE") {
      throw new ConfigError(`port ${config.port} on ${config.host} is already in use; set PORT to another port`);
    }
    throw error;
  });
  stack.push({ name: "HTTP server", run: () => server.close() });

  const lines = [
    "",
    `Attest is running at ${server.url}`,
    `  GraphQL: ${server.url}/graphql (explore it at ${server.url}/graphiql after signing in)`,
    `  evidence packs are signed by key ${formatFingerprint(signingKey.fingerprint)}`,
    `  database: ${embedded ? `embedded PostgreSQL on port ${embedded.port} (data in ${config.dataDir})` : db.databaseName}`,
  ];
  if (demo) {
    lines.push(`  demo logins (password "${DEMO_PASSWORD}"):`);
    for (const login of DEMO_LOGINS) lines.push(`    ${login.email.padEnd(18)} ${login.role} of ${login.tenant}`);
  }
  lines.push("  Stop with Ctrl-C.", "");
  process.stdout.write(`${lines.join("\n")}\n`);
}

main().catch(async (error) => {
  if (error instanceof SetupRequiredError) {
    process.stderr.write(`\n${error.message}\n\n${error.sql}\n\n`);
  } else if (error instanceof ConfigError) {
    process.stderr.write(`Configuration error: ${error.message}\n`);
  } else {
    log.error("Attest could not start", { error: (error as Error).stack ?? String(error) });
  }
  await shutdown("startup failed", 1);
});
