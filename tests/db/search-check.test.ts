/**
 * `npm run bench:search-check` as the README gives it, on a small history loaded through the bulk
 * path bench:pages uses (bench/history.ts) and kept as bench:pages keeps it (bench_pages.tenants):
 * the search route and the whole log agree, and bad settings are refused with a message.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadHistory } from "../../bench/history.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";
import { sealAll } from "../helpers/seal.ts";

const run = promisify(execFile);

describe.each(servers())("npm run bench:search-check on $name", (server) => {
  let t: TestDatabase;

  beforeAll(async () => {
    t = await createTestDatabase(server);
    const client = new pg.Client({ connectionString: t.superUrl });
    await client.connect();
    try {
      const loaded = await loadHistory(client, {
        tenants: [
          { slug: "mid-1", name: "Mid One", entries: 2500 },
          { slug: "other", name: "Other", entries: 300 },
        ],
        days: 60,
      });
      await client.query("create schema bench_pages");
      await client.query("create table bench_pages.tenants (slug text primary key, tenant jsonb not null)");
      for (const tenant of loaded) {
        await client.query("insert into bench_pages.tenants values ($1, $2)", [tenant.slug, JSON.stringify(tenant)]);
      }
    } finally {
      await client.end();
    }
    await sealAll(t.pools.owner);
  });
  afterAll(async () => {
    await t?.drop();
  });

  /** The command as written, on this test's database; its exit code and output. */
  const check = async (env: Record<string, string>) => {
    try {
      const { stdout } = await run("npm", ["run", "bench:search-check"], {
        env: { ...process.env, BENCH_PG_URL: t.superUrl, BENCH_DB: t.name, ...env },
      });
      return { code: 0, stdout };
    } catch (error) {
      const e = error as { code?: number; stdout?: string; stderr?: string };
      return { code: e.code ?? -1, stdout: `${e.stdout ?? ""}${e.stderr ?? ""}` }; // (a crash's stack shown)
    }
  };

  it("answers random conditions as the whole log does, in order", async () => {
    const { code, stdout } = await check({ CHECK_CASES: "60", CHECK_SEED: "11" });
    expect(stdout).toContain("60 random conditions in tenant mid-1");
    expect(stdout).toMatch(/60 cases, 0 mismatches; the route's time in the database p50 [\d.]+ ms/);
    expect(stdout).toMatch(/the first count's p50 [\d.]+ ms, p95 [\d.]+ ms, max [\d.]+ ms, 0 ran out of time/);
    expect(stdout).not.toContain("COUNT");
    expect(code).toBe(0);
  }, 120_000);

  it("reports the counts when what the namer and sealer keep is wrong", async () => {
    // One more entry on every kept day of the tenant's names and activity: counts taken from them are off.
    const tenantOf = "(select id from app_public.tenants where slug = 'mid-1')";
    const shift = async (by: number) => {
      const client = new pg.Client({ connectionString: t.superUrl });
      await client.connect();
      try {
        await client.query(
          `update app_private.audit_label_days set entries = entries + $1 where tenant_id = ${tenantOf}`,
          [by],
        );
        await client.query(
          `update app_private.audit_activity_daily set entries = entries + $1 where tenant_id = ${tenantOf}`,
          [by],
        );
      } finally {
        await client.end();
      }
    };
    await shift(1);
    try {
      const { code, stdout } = await check({ CHECK_CASES: "60", CHECK_SEED: "11" });
      expect(stdout).toMatch(/COUNT MISMATCH \{.*\}: gave \d+, from its base \d+; the log holds \d+/);
      expect(stdout).toMatch(/60 cases, [1-9]\d* mismatches/);
      expect(code).toBe(1);
    } finally {
      await shift(-1);
    }
  }, 120_000);

  it("refuses settings that are not whole numbers, and a tenant the history lacks", async () => {
    const cases = await check({ CHECK_CASES: "abc" });
    expect(cases.code).toBe(2);
    expect(cases.stdout).toContain('CHECK_CASES must be a whole number (0 or more), not "abc"');
    const missing = await check({ CHECK_TENANT: "nope" });
    expect(missing.code).toBe(1);
    expect(missing.stdout).toContain(`no tenant nope in ${t.name}'s bench history`);
  }, 120_000);
});
