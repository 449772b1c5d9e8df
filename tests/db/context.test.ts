/**
 * withContext: one transaction with the context's settings, opened with the first statement (its
 * `begin` and settings travel in that statement's message). Each form a first statement can take
 * opens the transaction the same way; an error rolls everything back; the connection goes back to
 * the pool clean (no transaction, no settings, no role), whatever happened.
 */
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepared, withContext } from "../../src/db/context.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";

describe.each(servers())("request context on $name", (server) => {
  let t: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    // One connection: every call reuses it, so whatever one call leaves behind, the next one sees.
    pool = new pg.Pool({ connectionString: t.superUrl, max: 1 });
    // An idle connection ends when the test database is dropped (CI once saw its "terminating
    // connection due to administrator command" as an uncaught exception after every test passed).
    pool.on("error", () => {});
    await t.superuser.query("create table public.context_probe (n int)");
  });
  afterAll(async () => {
    await pool?.end();
    await t?.drop();
  });

  const context = { surface: "sql" as const, requestId: "req-42", role: undefined };
  const state = "select current_setting('attest.request_id', true) as request_id";
  /** What the pooled connection looks like between calls. */
  const idle = async () =>
    (
      await pool.query(
        // In a transaction left open, now() would be when it began, before this statement. (A
        // setting once made reads '' afterwards, not null.)
        "select nullif(current_setting('attest.request_id', true), '') as request_id, current_user as role, now() = statement_timestamp() as fresh",
      )
    ).rows[0];

  it.each([
    ["a text", (c: pg.PoolClient) => c.query(state)],
    ["a text and values", (c: pg.PoolClient) => c.query(`${state}, $1::int as one`, [1])],
    ["a config object", (c: pg.PoolClient) => c.query({ text: `${state}, $1::int as one`, values: [1] })],
    ["an array-mode config", (c: pg.PoolClient) => c.query({ text: state, rowMode: "array" })],
    ["several statements in one text", (c: pg.PoolClient) => c.query(`select 1; ${state}`)],
    ["a named statement", (c: pg.PoolClient) => c.query({ name: "context_probe_state", text: state })],
  ])("opens the transaction with the settings when the first statement is %s", async (_form, run) => {
    const seen = await withContext(pool, context, async (c) => {
      const result = (await run(c)) as pg.QueryResult | pg.QueryResult[];
      const rows = Array.isArray(result) ? result[result.length - 1].rows : result.rows;
      // Later statements are in the same transaction, with the same settings.
      const later = await c.query(
        "select current_setting('attest.request_id', true) as request_id, now() < statement_timestamp() as same_transaction",
      );
      return { first: rows[0], later: later.rows[0] };
    });
    const first = Array.isArray(seen.first) ? { request_id: seen.first[0] } : seen.first;
    expect(first.request_id).toBe("req-42");
    expect(seen.later).toEqual({ request_id: "req-42", same_transaction: true });
    expect(await idle()).toMatchObject({ request_id: null, fresh: true });
  });

  it("runs a prepared statement (prepared()) first or later, on its first use and once prepared, with the settings", async () => {
    const probe = prepared(`${state}, $1::text as tag`, ["first"]);
    for (const round of [1, 2, 3]) {
      const seen = await withContext(pool, { ...context, requestId: `req-${round}` }, async (c) => {
        const first = await c.query({ ...probe, values: [`first-${round}`] });
        const later = await c.query({ ...probe, values: [`later-${round}`] });
        const names = await c.query(
          "select count(*)::int as n from pg_prepared_statements where statement like '%current_setting(''attest.request_id''%$1::text as tag%'",
        );
        return { first: first.rows[0], later: later.rows[0], prepared: names.rows[0].n };
      });
      expect(seen.first).toEqual({ request_id: `req-${round}`, tag: `first-${round}` });
      expect(seen.later).toEqual({ request_id: `req-${round}`, tag: `later-${round}` });
      // Prepared once on the connection, whichever way it ran.
      expect(seen.prepared).toBe(1);
      expect(await idle()).toMatchObject({ request_id: null, fresh: true });
    }
    // A prepared statement that fails as the first statement rolls the transaction back.
    const failing = prepared("select 1 / $1::int as n", [1]);
    await withContext(pool, context, (c) => c.query(failing));
    await expect(withContext(pool, context, (c) => c.query({ ...failing, values: [0] }))).rejects.toThrow();
    expect(await idle()).toMatchObject({ request_id: null, fresh: true });
    expect((await withContext(pool, context, (c) => c.query({ ...failing, values: [1] }))).rows).toEqual([{ n: 1 }]);
  });

  it("commits what the transaction wrote, once, at the end", async () => {
    await withContext(pool, context, async (c) => {
      await c.query("insert into public.context_probe values (1)");
      await c.query("insert into public.context_probe values (2)");
      // Not visible to another connection before the commit.
      const outside = await t.superuser.query("select count(*)::int as n from public.context_probe");
      expect(outside.rows[0].n).toBe(0);
    });
    const after = await t.superuser.query("select array_agg(n order by n) as ns from public.context_probe");
    expect(after.rows[0].ns).toEqual([1, 2]);
  });

  it("rolls back everything when the first or a later statement fails, and leaves the connection clean", async () => {
    for (const failing of [
      async (c: pg.PoolClient) => {
        await c.query("insert into public.context_probe values ('not a number')");
      },
      async (c: pg.PoolClient) => {
        await c.query("insert into public.context_probe values (3)");
        await c.query("select 1 / 0");
      },
    ]) {
      await expect(withContext(pool, context, failing)).rejects.toThrow();
      expect(await idle()).toMatchObject({ request_id: null, fresh: true });
    }
    const after = await t.superuser.query("select array_agg(n order by n) as ns from public.context_probe");
    expect(after.rows[0].ns).toEqual([1, 2]);
  });

  it("switches to the context's role for the transaction only", async () => {
    const role = await withContext(pool, { surface: "sql", role: t.db.roles.visitor }, async (c) => {
      return (await c.query("select current_user as role")).rows[0].role as string;
    });
    expect(role).toBe(t.db.roles.visitor);
    expect((await idle()).role).not.toBe(t.db.roles.visitor);
  });

  it("opens nothing when nothing is asked", async () => {
    expect(await withContext(pool, context, async () => 7)).toBe(7);
    expect(await idle()).toMatchObject({ request_id: null, fresh: true });
  });
});
