/**
 * A worker process for tests that need to kill one: runs Attest's graphile-worker runner against
 * the database given in the environment (owner connection in ATTEST_TEST_OWNER_URL, role to act as
 * in ATTEST_TEST_OWNER_ROLE) until killed. Prints "worker ready" once it takes jobs.
 */
import pg from "pg";
import { startWorker } from "../../worker/index.ts";

const pool = new pg.Pool({
  connectionString: process.env.ATTEST_TEST_OWNER_URL,
  options: process.env.ATTEST_TEST_OWNER_ROLE ? `-c role=${process.env.ATTEST_TEST_OWNER_ROLE}` : undefined,
  max: 4,
});
pool.on("error", () => {});
const log = {
  debug() {},
  info(m: string) {
    process.stdout.write(`${m}\n`);
  },
  warn(m: string) {
    process.stdout.write(`${m}\n`);
  },
  error(m: string) {
    process.stdout.write(`${m}\n`);
  },
};
const worker = await startWorker({
  pgPool: pool,
  concurrency: 1,
  log,
  webhooks: {
    allowPrivate: process.env.ATTEST_WEBHOOKS_ALLOW_PRIVATE === "true",
    timeoutMs: 5000,
    maxFailures: Number(process.env.ATTEST_WEBHOOK_MAX_FAILURES || 10),
    maxResponseBytes: 65536,
  },
});
process.stdout.write("worker ready\n");
process.on("SIGTERM", async () => {
  await worker.stop();
  await pool.end();
  process.exit(0);
});
