/**
 * The worker liveness watchdog never declares a live worker dead: graphile-worker locks jobs in
 * the name of the worker pool, and a job that such a pool is running must stay locked (a false
 * "worker stopped" would run it a second time — the demo pack was once built twice).
 */
import { type Runner, run } from "graphile-worker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { workerLiveness } from "../../worker/liveness.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

describe.each(servers())("worker liveness on $name", (server) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
  });
  afterAll(async () => {
    await t?.drop();
  });

  it("leaves the jobs of a running worker locked, and unlocks those of a worker that is gone", async () => {
    const liveness = workerLiveness(t.pools.owner, quiet);
    let release: () => void = () => {};
    const running = new Promise<void>((resolve) => {
      release = resolve;
    });
    let started = 0;
    const runner: Runner = await run({
      pgPool: t.pools.owner,
      taskList: {
        hold: async () => {
          started++;
          await running;
        },
      },
      concurrency: 1,
      noHandleSignals: true,
      pollInterval: 100,
      events: liveness.events,
      logger: undefined,
    });
    try {
      await t.pools.owner.query("select graphile_worker.add_job('hold', '{}'::json)");
      const deadline = Date.now() + 10_000;
      while (started === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(started).toBe(1);
      const locked = async () =>
        (
          await t.superuser.query<{ locked_by: string | null }>(
            "select locked_by from graphile_worker.jobs where task_identifier = 'hold'",
          )
        ).rows[0]?.locked_by ?? null;
      const owner = await locked();
      expect(owner).not.toBeNull();

      // Before and after the first heartbeat: the running job's worker is alive.
      expect(await liveness.recover()).toBe(0);
      liveness.start();
      await new Promise((r) => setTimeout(r, 300));
      expect(await liveness.recover()).toBe(0);
      expect(await locked()).toBe(owner);

      // A job locked by a worker that never beat (a process killed long ago) is unlocked.
      await t.superuser.query(
        "select graphile_worker.add_job('orphan', '{}'::json, run_at := now() + interval '1 hour')",
      );
      await t.superuser.query(
        "update graphile_worker._private_jobs set locked_by = 'worker-gone', locked_at = now() where task_id = (select id from graphile_worker._private_tasks where identifier = 'orphan')",
      );
      expect(await liveness.recover()).toBe(1);
      expect(await locked()).toBe(owner);
    } finally {
      release();
      await runner.stop();
      await liveness.stop();
    }
    expect(started).toBe(1);
  });
});
