/**
 * Stopping the worker (Ctrl-C on npm start) while it verifies a log: verifying millions of entries
 * takes tens of seconds, and the shutdown must not wait for it. graphile-worker aborts a running
 * job's signal 5 s into a graceful shutdown; the verification is then cancelled in PostgreSQL,
 * nothing is recorded, and the job stays queued for the next start.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startWorker } from "../../worker/index.ts";
import { asUser, createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { runJobsOnce, TEST_WEBHOOKS } from "../helpers/worker.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

describe.each(servers())("worker shutdown on $name", (server) => {
  let t: TestDatabase;
  let demo: string;
  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    demo = (await ids(t)).tenants.demo;
  });
  afterAll(async () => {
    await t?.drop();
  });

  const job = async () =>
    (
      await t.superuser.query(
        "select attempts, max_attempts, locked_at, last_error from graphile_worker.jobs where task_identifier = 'verify_audit_chain'",
      )
    ).rows;
  const recorded = async () =>
    (
      await t.superuser.query<{ n: number }>(
        "select count(*)::int as n from app_private.chain_verifications where tenant_id = $1",
        [demo],
      )
    ).rows[0].n;

  it("cancels a running verification when it stops, records nothing, and verifies at the next start", async () => {
    // The owner clicks Verify now.
    await asUser(t, "owner@demo.test", "demo", (c) => c.query("select app_public.request_audit_verification()"));
    // A superuser holds the verifications table: the job's statement waits until it is cancelled,
    // as a verification of a very large log runs on.
    const holder = new pg.Client({ connectionString: t.superUrl });
    await holder.connect();
    try {
      await holder.query("begin");
      await holder.query("lock table app_private.chain_verifications in access exclusive mode");
      const worker = await startWorker({ pgPool: t.pools.owner, concurrency: 1, log: quiet, webhooks: TEST_WEBHOOKS });
      await expect
        .poll(
          async () =>
            (
              await t.superuser.query<{ n: number }>(
                `select count(*)::int as n from pg_stat_activity
                 where datname = current_database() and wait_event_type = 'Lock' and query like '%record_chain_verification(%'`,
              )
            ).rows[0].n,
          { timeout: 30_000 },
        )
        .toBe(1);
      // Without the cancel this would wait as long as the lock is held: for ever.
      await worker.stop();
      expect(await job()).toEqual([
        {
          attempts: 1,
          max_attempts: 3,
          locked_at: null,
          last_error: "stopped by the shutdown; it runs again at the next start",
        },
      ]);
      const waiting = await t.superuser.query(
        "select count(*)::int as n from pg_stat_activity where datname = current_database() and query like '%record_chain_verification(%' and state = 'active' and pid <> pg_backend_pid()",
      );
      expect(waiting.rows[0].n).toBe(0);
    } finally {
      await holder.query("rollback");
      await holder.end();
    }
    expect(await recorded()).toBe(0);
    // The next start runs it again, after graphile-worker's short backoff (e^1 s).
    await expect
      .poll(
        async () => {
          await runJobsOnce(t.pools.owner);
          return recorded();
        },
        { timeout: 30_000, interval: 500 },
      )
      .toBe(1);
    const { rows } = await t.superuser.query(
      "select valid, first_invalid_seq from app_private.chain_verifications where tenant_id = $1",
      [demo],
    );
    expect(rows).toEqual([{ valid: true, first_invalid_seq: null }]);
  });

  it("verifies every tenant daily in a transaction of its own, and a retry goes on where the last attempt stopped", async () => {
    await t.superuser.query(
      "insert into app_public.tenants (slug, name, plan_id) values ('third', 'Third', 'business'), ('fourth', 'Fourth', 'free')",
    );
    const { tenants } = await ids(t);
    const { rows: queued } = await t.superuser.query<{ created_at: Date }>(
      "select created_at from graphile_worker.add_job('verify_audit_chains', '{}'::json)",
    );
    // The tenant `basic` was verified after the job was queued, as by an attempt a shutdown stopped.
    await t.superuser.query("select app_private.record_chain_verification($1)", [tenants.basic]);
    await runJobsOnce(t.pools.owner);
    const { rows } = await t.superuser.query<{ slug: string; n: number; checked: Date[]; valid: boolean[] }>(
      `select t.slug, count(v.id)::int as n, array_agg(v.checked_at) as checked, array_agg(v.valid) as valid
       from app_public.tenants t left join app_private.chain_verifications v on v.tenant_id = t.id and v.checked_at >= $1
       group by t.slug order by t.slug`,
      [queued[0].created_at],
    );
    expect(rows.map((r) => r.slug).sort()).toEqual(Object.keys(tenants).sort());
    // Each tenant once (basic not again), each valid, each at a time of its own (its own transaction).
    expect(rows.map((r) => [r.slug, r.n, r.valid])).toEqual(rows.map((r) => [r.slug, 1, [true]]));
    expect(new Set(rows.map((r) => r.checked[0].getTime())).size).toBe(rows.length);
    const left = await t.superuser.query(
      "select 1 from graphile_worker.jobs where task_identifier = 'verify_audit_chains'",
    );
    expect(left.rows).toEqual([]);
  });

  it("keeps the tenants a daily run verified before a shutdown stopped it, and verifies the rest at the next start", async () => {
    await t.superuser.query(
      "insert into app_public.tenants (slug, name, plan_id) values ('x-free', 'X Free', 'business'), ('x-held', 'X Held', 'business')",
    );
    const { rows: queued } = await t.superuser.query<{ created_at: Date }>(
      "select created_at from graphile_worker.add_job('verify_audit_chains', '{}'::json)",
    );
    const since = queued[0].created_at;
    const verified = async () =>
      (
        await t.superuser.query<{ slug: string; n: number }>(
          `select t.slug, count(*)::int as n from app_private.chain_verifications v join app_public.tenants t on t.id = v.tenant_id
           where v.checked_at >= $1 group by t.slug order by t.slug`,
          [since],
        )
      ).rows;
    const slugs = (
      await t.superuser.query<{ slug: string }>("select slug from app_public.tenants order by slug")
    ).rows.map((r) => r.slug);
    expect(slugs[slugs.length - 1]).toBe("x-held");
    // The last tenant's row is held: recording its verification waits (the foreign key's row lock).
    const holder = new pg.Client({ connectionString: t.superUrl });
    await holder.connect();
    try {
      await holder.query("begin");
      await holder.query("select 1 from app_public.tenants where slug = 'x-held' for update");
      const worker = await startWorker({ pgPool: t.pools.owner, concurrency: 1, log: quiet, webhooks: TEST_WEBHOOKS });
      await expect.poll(async () => (await verified()).length, { timeout: 30_000 }).toBe(slugs.length - 1);
      await worker.stop();
    } finally {
      await holder.query("rollback");
      await holder.end();
    }
    const { rows: job } = await t.superuser.query(
      "select attempts, last_error from graphile_worker.jobs where task_identifier = 'verify_audit_chains'",
    );
    expect(job).toEqual([{ attempts: 1, last_error: "stopped by the shutdown; it runs again at the next start" }]);
    expect(await verified()).toEqual(slugs.slice(0, -1).map((slug) => ({ slug, n: 1 })));
    // The next start verifies the one left, once its backoff (e^1 s) is over, and no other again.
    await expect
      .poll(
        async () => {
          await runJobsOnce(t.pools.owner);
          return verified();
        },
        { timeout: 30_000, interval: 500 },
      )
      .toEqual(slugs.map((slug) => ({ slug, n: 1 })));
  });
});
