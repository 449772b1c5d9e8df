/**
 * Audit core v2 in the database: capture takes no tenant-wide lock, the sealer orders committed
 * entries into gapless per-tenant Merkle logs (two sealers, a killed sealer), checkpoints are
 * signed notes of those trees, SQL proofs verify with the Node verifier, and
 * app_public.verify_audit_chain names the first bad position after superuser tampering (done in
 * a transaction that is rolled back, with triggers off through session_replication_role).
 */
import { createPublicKey } from "node:crypto";
import fc from "fast-check";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkpointSignedBy, parseCheckpoint } from "../../src/audit/checkpoint.ts";
import { activeSigningKey } from "../../src/audit/keys.ts";
import { hashLeaf, inclusionProofOf, rootOf, verifyConsistency, verifyInclusion } from "../../src/audit/merkle.ts";
import { checkpointPacing, sealOnce } from "../../src/audit/sealer.ts";
import { withContext } from "../../src/db/context.ts";
import { createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { sealAll, TEST_ORIGIN } from "../helpers/seal.ts";

interface Verdict {
  valid: boolean;
  entries: string;
  last_seq: string;
  first_invalid_seq: string | null;
  problem: string | null;
  pending: string;
}

const hex = (s: string) => Buffer.from(s, "hex");

describe.each(servers())("audit log v2 on $name", (server) => {
  let t: TestDatabase;
  let demo: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    demo = (await ids(t)).tenants.demo;
  });
  afterAll(async () => {
    await t?.drop();
  });

  const verify = async (tenant: string): Promise<Verdict> =>
    (await t.superuser.query<Verdict>("select * from app_public.verify_audit_chain($1)", [tenant])).rows[0];

  async function newTenant(slug: string): Promise<string> {
    const { rows } = await t.superuser.query(
      "insert into app_public.tenants (slug, name, plan_id) values ($1, $1, 'business') returning id",
      [slug],
    );
    return rows[0].id;
  }

  /** Tampers as a superuser with triggers off, verifies in the same transaction, rolls back. */
  async function tamper(sql: string[], tenant = demo): Promise<Verdict> {
    const client = new pg.Client({ connectionString: t.superUrl });
    await client.connect();
    try {
      await client.query("begin");
      await client.query("set local session_replication_role = replica");
      for (const statement of sql) await client.query(statement, [tenant]);
      const { rows } = await client.query<Verdict>("select * from app_public.verify_audit_chain($1)", [tenant]);
      // The verifier reads a large tenant by whole-table scans and a small one through indexes
      // (migrations 000040, 000051, 000052): both ways find the same, whichever this tenant takes.
      const ways = await client.query(
        `select (select row(sum(v.pairs), sum(v.seq_sum), min(v.first_bad), sum(v.entries))
                   from app_private.audit_verify_leaves($1, false) v)::text as leaves_index,
                (select row(sum(v.pairs), sum(v.seq_sum), min(v.first_bad), sum(v.entries))
                   from app_private.audit_verify_leaves($1, true) v)::text as leaves_scan,
                (select array_agg(v order by v) from app_private.audit_verify_nodes($1, false) v)::text as nodes_index,
                (select array_agg(v order by v) from app_private.audit_verify_nodes($1, true) v)::text as nodes_scan,
                (select array_agg(v order by v) from app_private.audit_verify_links($1, false) v)::text as links_index,
                (select array_agg(v order by v) from app_private.audit_verify_links($1, true) v)::text as links_scan`,
        [tenant],
      );
      expect(ways.rows[0].leaves_scan).toBe(ways.rows[0].leaves_index);
      expect(ways.rows[0].nodes_scan).toBe(ways.rows[0].nodes_index);
      expect(ways.rows[0].links_scan).toBe(ways.rows[0].links_index);
      return rows[0];
    } finally {
      await client.query("rollback");
      await client.end();
    }
  }

  it("seals every seeded entry into gapless logs that verify, with signed checkpoints", async () => {
    const { rows } = await t.superuser.query(
      "select t.slug, v.* from app_public.tenants t cross join lateral app_public.verify_audit_chain(t.id) v order by slug",
    );
    expect(rows.map((r) => [r.slug, r.valid, r.problem, r.pending])).toEqual([
      ["basic", true, null, "0"],
      ["demo", true, null, "0"],
    ]);
    const demoRow = rows.find((r) => r.slug === "demo");
    const { rows: leaves } = await t.superuser.query(
      "select count(*)::int as n, min(seq)::int as min, max(seq)::int as max from app_hidden.audit_leaves where tenant_id = $1",
      [demo],
    );
    expect(leaves[0]).toEqual({ n: Number(demoRow.entries), min: 1, max: Number(demoRow.entries) });

    const key = await activeSigningKey(t.pools.owner);
    const { rows: cps } = await t.superuser.query(
      "select tree_size, root_hash, note, origin from app_public.audit_checkpoints where tenant_id = $1 order by tree_size desc limit 1",
      [demo],
    );
    const cp = parseCheckpoint(cps[0].note);
    expect(cp).toMatchObject({ origin: `${TEST_ORIGIN}/audit/${demo}`, treeSize: Number(demoRow.entries) });
    expect(cp.rootHash.equals(cps[0].root_hash)).toBe(true);
    expect(checkpointSignedBy(cp, createPublicKey(key.privateKey))).toBe(true);
    // The Node computation of the root over the stored leaves gives the signed root.
    const { rows: all } = await t.superuser.query(
      "select leaf_hash from app_hidden.audit_leaves where tenant_id = $1 order by seq",
      [demo],
    );
    expect(rootOf(all.map((r) => r.leaf_hash)).equals(cp.rootHash)).toBe(true);
  });

  it("gives every leaf the hash of its bytes: header, incident link, body", async () => {
    const { rows } = await t.superuser.query(
      `select l.seq, l.leaf_hash, l.incident_id, app_private.audit_entry_body(e) as body,
              lag(l.seq) over w as pseq, lag(l.leaf_hash) over w as pleaf
       from app_hidden.audit_leaves l join app_public.audit_log e on e.tenant_id = l.tenant_id and e.id = l.entry_id
       where l.tenant_id = $1 window w as (partition by l.incident_id order by l.seq) order by l.seq`,
      [demo],
    );
    for (const r of rows) {
      const link =
        r.incident_id === null
          ? ""
          : `incident-prev ${r.pseq === null ? "none" : `${r.pseq} ${r.pleaf.toString("hex")}`}\n`;
      const bytes = Buffer.from(`attest-audit-entry/2\nseq ${r.seq}\n${link}\n${r.body}`, "utf8");
      expect(hashLeaf(bytes).equals(r.leaf_hash), `seq ${r.seq}`).toBe(true);
      expect(JSON.parse(r.body).tenant_id).toBe(demo); // the body is JSON a verifier can read
    }
  });

  it("never makes a writer wait for another writer of the same tenant", async () => {
    const tenant = await newTenant("nolock");
    await sealAll(t.pools.owner);
    const holder = await t.pools.owner.connect();
    try {
      await holder.query("begin");
      await holder.query("insert into app_public.incidents (tenant_id, title) values ($1, 'held open')", [tenant]);
      // A second writer in the same tenant, while the first transaction is still open.
      const started = Date.now();
      await withContext(t.pools.owner, { surface: "sql" }, async (c) => {
        await c.query("set local lock_timeout = '2s'");
        await c.query("insert into app_public.incidents (tenant_id, title) values ($1, 'second writer')", [tenant]);
      });
      expect(Date.now() - started).toBeLessThan(2000);
      // The second writer committed first but began after the first: its entry waits for the
      // first transaction to end, so it cannot take a position before it.
      await sealAll(t.pools.owner);
      expect((await verify(tenant)).pending).toBe("1");
      await holder.query("commit");
    } finally {
      holder.release();
    }
    await sealAll(t.pools.owner);
    const { rows } = await t.superuser.query(
      `select l.seq, e.resource_label from app_hidden.audit_leaves l
       join app_public.audit_log e on e.tenant_id = l.tenant_id and e.id = l.entry_id
       where l.tenant_id = $1 and e.action = 'incident.created' order by l.seq`,
      [tenant],
    );
    expect(rows.map((r) => r.resource_label)).toEqual(["held open", "second writer"]);
    expect(await verify(tenant)).toMatchObject({ valid: true, pending: "0" });
  });

  it("takes the horizon right when a transaction began after its snapshot (it stopped sealing under load)", async () => {
    // The horizon's snapshot is fixed first (REPEATABLE READ keeps it); another transaction then
    // takes an xid, which is at or above that snapshot's xmax, and stays open while the horizon
    // reads pg_locks. Its xid was once widened 2^32 too low: a negative horizon, nothing sealed.
    const reader = await t.pools.owner.connect();
    const late = await t.pools.owner.connect();
    try {
      await reader.query("begin isolation level repeatable read");
      const { rows: snap } = await reader.query<{ xmax: string }>(
        "select pg_snapshot_xmax(pg_current_snapshot())::text as xmax",
      );
      // Another transaction takes (and ends with) the next xid first, so that the late one's xid
      // is above the xmax, not equal to it.
      await t.superuser.query("select pg_current_xact_id()");
      await late.query("begin");
      const { rows: mine } = await late.query<{ xid: string }>("select pg_current_xact_id()::text as xid");
      expect(BigInt(mine[0].xid)).toBeGreaterThan(BigInt(snap[0].xmax));
      const { rows } = await reader.query<{ horizon: string }>(
        "select app_private.audit_seal_horizon()::text as horizon",
      );
      expect(rows[0].horizon).toBe(snap[0].xmax);
    } finally {
      await late.query("rollback").catch(() => {});
      await reader.query("rollback").catch(() => {});
      late.release();
      reader.release();
    }
  });

  it("seals and names without JIT compilation, whoever calls (000056)", async () => {
    // With statistics of a large log a round's query is priced past jit_above_cost, and
    // compiling it took ~0.4 s of every 50,000-entry round.
    const { rows } = await t.superuser.query(
      `select p.proname, p.proconfig from pg_proc p join pg_namespace n on n.oid = p.pronamespace
       where n.nspname = 'app_private' and p.proname in ('seal_audit_entries', 'name_audit_entries', 'tidy_audit_names')
       order by p.proname`,
    );
    expect(rows.map((r) => r.proname)).toEqual(["name_audit_entries", "seal_audit_entries", "tidy_audit_names"]);
    for (const r of rows) expect(r.proconfig, r.proname).toContain("jit=off");
    // And the product's own connections (server, worker, sealer) run without it.
    for (const pool of [t.pools.owner, t.pools.sealer, t.pools.auth]) {
      const { rows: jit } = await pool.query("select current_setting('jit') as jit");
      expect(jit[0].jit).toBe("off");
    }
  });

  it("keeps a name's entries of each action and actor that day across naming rounds, each round's added to the last's (000072)", async () => {
    const tenant = await newTenant("names-actions");
    const kept = async () =>
      (
        await t.superuser.query<{ action_entries: Record<string, number>; actors: number; entries: string }>(
          `select action_entries, (select sum(value::int) from jsonb_each_text(actor_entries))::int as actors, entries::text
           from app_private.audit_label_days where tenant_id = $1 and label = 'Quokka names 72'`,
          [tenant],
        )
      ).rows;
    await t.superuser.query("insert into app_public.incidents (tenant_id, title) values ($1, 'Quokka names 72')", [
      tenant,
    ]);
    await sealAll(t.pools.owner);
    expect(await kept()).toEqual([{ action_entries: { "incident.created": 1 }, actors: 1, entries: "1" }]);
    // The same name the same day in later rounds: another action, then the same one again.
    await t.superuser.query("update app_public.incidents set severity = 'critical' where tenant_id = $1", [tenant]);
    await sealAll(t.pools.owner);
    await t.superuser.query("update app_public.incidents set severity = 'low' where tenant_id = $1", [tenant]);
    await sealAll(t.pools.owner);
    expect(await kept()).toEqual([
      { action_entries: { "incident.created": 1, "incident.updated": 2 }, actors: 3, entries: "3" },
    ]);
  });

  it("looks for work in an idle round with one index probe, not by reading the log, even on a generic plan", async () => {
    // Enough entries for the index to be the way in, and statistics for the planner.
    const tenant = await newTenant("idle-probe");
    await t.superuser.query(
      "insert into app_public.incidents (tenant_id, title) select $1, 'Idle ' || g from generate_series(1, 3000) g",
      [tenant],
    );
    await sealAll(t.pools.owner);
    await t.superuser.query("analyze app_public.audit_log");
    const client = new pg.Client({ connectionString: t.superUrl });
    await client.connect();
    try {
      await client.query("begin");
      // What a long-lived sealer connection gets after five rounds: plans made without the cursor.
      await client.query("set local plan_cache_mode = force_generic_plan");
      for (let round = 0; round < 8; round++) {
        const { rows } = await client.query("select count(*)::int as n from app_private.seal_audit_entries(1000)");
        expect(rows[0].n).toBe(0);
      }
      const { rows } = await client.query(
        "select seq_scan::int as n from pg_stat_xact_user_tables where relid = 'app_public.audit_log'::regclass",
      );
      expect(rows[0].n).toBe(0);
      await client.query("rollback");
    } finally {
      await client.end();
    }
  });

  it("widens a 32-bit xid to the 64-bit xid nearest to the next xid, across epochs", async () => {
    const cases: Array<[string, string, string]> = [
      ["793082", "793077", "793082"], // began after the snapshot
      ["793070", "793077", "793070"],
      ["5", "4294967290", "4294967301"], // the next epoch
      ["4294967290", String(2 ** 32 + 10), "4294967290"], // the previous epoch
      ["100", String(3 * 2 ** 32 + 50), String(3 * 2 ** 32 + 100)],
    ];
    for (const [xid, near, widened] of cases) {
      const { rows } = await t.superuser.query<{ x: string }>("select app_private.xid_widen($1::xid, $2)::text as x", [
        xid,
        near,
      ]);
      expect(rows[0].x).toBe(widened);
    }
  });

  it("keeps gapless, valid logs with concurrent writers in several tenants and two sealers", async () => {
    const tenants = [await newTenant("conc-a"), await newTenant("conc-b"), await newTenant("conc-c")];
    let writing = true;
    const key = await activeSigningKey(t.pools.owner);
    const sealers = [0, 1].map(async () => {
      let sealed = 0;
      while (writing) {
        sealed += (await sealOnce(t.pools.owner, { key, originPrefix: TEST_ORIGIN, maxEntries: 7 })).sealed;
      }
      return sealed;
    });
    const writers = Array.from({ length: 6 }, (_, w) =>
      (async () => {
        for (let i = 0; i < 12; i++) {
          const tenant = tenants[(w + i) % tenants.length];
          await withContext(t.pools.owner, { surface: "sql" }, async (c) => {
            const { rows } = await c.query(
              "insert into app_public.incidents (tenant_id, title) values ($1, $2) returning id",
              [tenant, `w${w}-${i}`],
            );
            await c.query("update app_public.incidents set status = 'in_progress' where tenant_id = $1 and id = $2", [
              tenant,
              rows[0].id,
            ]);
          });
        }
      })(),
    );
    await Promise.all(writers);
    writing = false;
    const sealedWhileWriting = (await Promise.all(sealers)).reduce((a, b) => a + b, 0);
    expect(sealedWhileWriting).toBeGreaterThan(0);
    await sealAll(t.pools.owner);
    const { rows } = await t.superuser.query(
      `select v.*, (select count(*) from app_hidden.audit_leaves l where l.tenant_id = t.id)::int as leaves,
              (select count(distinct l.entry_id) from app_hidden.audit_leaves l where l.tenant_id = t.id)::int as distinct_entries
       from app_public.tenants t cross join lateral app_public.verify_audit_chain(t.id) v where t.id = any($1::uuid[])`,
      [tenants],
    );
    expect(rows.map((r) => [r.valid, r.pending])).toEqual([
      [true, "0"],
      [true, "0"],
      [true, "0"],
    ]);
    // 1 tenant.created + 2 entries per write; 6 writers × 12 writes spread over 3 tenants.
    expect(rows.reduce((sum, r) => sum + r.leaves, 0)).toBe(3 + 6 * 12 * 2);
    for (const r of rows) expect(r.distinct_entries).toBe(r.leaves);
    // The kept activity the pages read: per hour (all actions) and per hour and action agree with
    // the sealed entries themselves.
    const { rows: activity } = await t.superuser.query(
      `select t.id::text as tenant,
              (select count(*) from app_hidden.audit_leaves l where l.tenant_id = t.id)::int as sealed,
              (select coalesce(sum(h.entries), 0) from app_private.audit_activity_hours h where h.tenant_id = t.id)::int as hours,
              (select coalesce(sum(h.entries), 0) from app_private.audit_activity_hourly h where h.tenant_id = t.id)::int as hourly,
              (select count(*) from (
                 select date_trunc('hour', e.occurred_at, 'UTC') as hour, count(*) as n
                 from app_public.audit_log e join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
                 where e.tenant_id = t.id group by 1
                 except select h.hour, h.entries from app_private.audit_activity_hours h where h.tenant_id = t.id) x)::int as wrong_hours,
              (select coalesce(sum(d.entries), 0) from app_private.audit_activity_daily d where d.tenant_id = t.id)::int as daily,
              (select count(*) from (
                 (select (e.occurred_at at time zone 'UTC')::date as day, e.action, e.actor_label, count(*) as n, max(e.occurred_at) as last_at
                  from app_public.audit_log e join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
                  where e.tenant_id = t.id group by 1, 2, 3
                  except select d.day, d.action, d.actor_label, d.entries, d.last_at from app_private.audit_activity_daily d where d.tenant_id = t.id)
                 union all
                 (select d.day, d.action, d.actor_label, d.entries, d.last_at from app_private.audit_activity_daily d where d.tenant_id = t.id
                  except select (e.occurred_at at time zone 'UTC')::date, e.action, e.actor_label, count(*), max(e.occurred_at)
                  from app_public.audit_log e join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
                  where e.tenant_id = t.id group by 1, 2, 3)) x)::int as wrong_days
       from app_public.tenants t where t.id = any($1::uuid[]) order by 1`,
      [tenants],
    );
    for (const a of activity) {
      expect(a.hours).toBe(a.sealed);
      expect(a.hourly).toBe(a.sealed);
      expect(a.wrong_hours).toBe(0);
      // … and per day, action and actor, with the latest time (the reporting views' daily activity)
      expect(a.daily).toBe(a.sealed);
      expect(a.wrong_days).toBe(0);
    }
  });

  it("loses and duplicates nothing when a sealer is killed mid-batch", async () => {
    const tenant = await newTenant("killed");
    await t.superuser.query(
      "insert into app_public.incidents (tenant_id, title) select $1, 'bulk ' || g from generate_series(1, 3000) g",
      [tenant],
    );
    const victim = new pg.Client({ connectionString: t.superUrl });
    await victim.connect();
    victim.on("error", () => {});
    const { rows: pidRows } = await victim.query("select pg_backend_pid() as pid");
    const running = victim
      .query(`begin; set local role "${t.db.roles.owner}"; select * from app_private.seal_audit_entries(100000);`)
      .then(
        () => "finished",
        () => "killed",
      );
    await new Promise((r) => setTimeout(r, 30));
    await t.superuser.query("select pg_terminate_backend($1)", [pidRows[0].pid]);
    expect(await running).toBe("killed");
    await victim.end().catch(() => {});
    await sealAll(t.pools.owner);
    const v = await verify(tenant);
    expect(v).toMatchObject({ valid: true, pending: "0", last_seq: "3001" });
  });

  it("paces checkpoints: one per tenant per interval, the deferred head signed later", async () => {
    const tenant = await newTenant("paced");
    await sealAll(t.pools.owner);
    const key = await activeSigningKey(t.pools.owner);
    const pacing = checkpointPacing(60_000);
    const checkpoints = async () =>
      (
        await t.superuser.query(
          "select max(tree_size)::int as n from app_public.audit_checkpoints where tenant_id = $1",
          [tenant],
        )
      ).rows[0].n as number;
    const write = () =>
      t.superuser.query("insert into app_public.incidents (tenant_id, title) values ($1, 'paced')", [tenant]);
    await write();
    await sealOnce(t.pools.owner, { key, originPrefix: TEST_ORIGIN, pacing });
    expect(await checkpoints()).toBe(2); // signed at once: no checkpoint of this sealer yet
    await write();
    await sealOnce(t.pools.owner, { key, originPrefix: TEST_ORIGIN, pacing });
    expect(await checkpoints()).toBe(2); // sealed (position 3), signature deferred
    expect((await verify(tenant)).last_seq).toBe("3");
    pacing.everyMs = 0;
    await sealOnce(t.pools.owner, { key, originPrefix: TEST_ORIGIN, pacing });
    expect(await checkpoints()).toBe(3); // the deferred head, signed in a later round
  });

  it("serves SQL inclusion and consistency proofs that the Node verifier accepts", async () => {
    const { rows: leaves } = await t.superuser.query(
      "select leaf_hash from app_hidden.audit_leaves where tenant_id = $1 order by seq",
      [demo],
    );
    const leafHashes = leaves.map((r) => r.leaf_hash as Buffer);
    const { rows: cps } = await t.superuser.query(
      "select tree_size::int as size, root_hash from app_public.audit_checkpoints where tenant_id = $1 order by tree_size",
      [demo],
    );
    const latest = cps.at(-1);
    for (let seq = 1; seq <= latest.size; seq++) {
      const { rows } = await t.superuser.query("select (reporting.audit_inclusion_proof($1, $2)).*", [demo, seq]);
      const p = rows[0];
      expect(Number(p.tree_size)).toBe(latest.size);
      const proof = (p.proof as string[]).map(hex);
      expect(proof.map((b) => b.toString("hex"))).toEqual(
        inclusionProofOf(seq - 1, leafHashes.slice(0, latest.size)).map((b) => b.toString("hex")),
      );
      expect(verifyInclusion(seq - 1, latest.size, hex(p.leaf_hash), proof, latest.root_hash)).toBe(true);
    }
    // Consistency between every pair of checkpoints of the demo tenant's log.
    for (const a of cps) {
      for (const b of cps) {
        if (a.size > b.size) continue;
        const { rows } = await t.superuser.query("select (reporting.audit_consistency_proof($1, $2, $3)).*", [
          demo,
          a.size,
          b.size,
        ]);
        const ok = verifyConsistency(a.size, b.size, (rows[0].proof as string[]).map(hex), a.root_hash, b.root_hash);
        expect(ok, `${a.size} → ${b.size}`).toBe(true);
      }
    }
  });

  it("proves consistency across many sizes of a growing log", async () => {
    const tenant = await newTenant("growing");
    const key = await activeSigningKey(t.pools.owner);
    for (let round = 0; round < 12; round++) {
      await t.superuser.query(
        "insert into app_public.incidents (tenant_id, title) select $1, 'r' || g from generate_series(1, $2::int) g",
        [tenant, 1 + ((round * 7) % 13)],
      );
      // A round seals what was committed before every transaction still running in this database
      // began (the seal horizon): under a busy test run one may be open for a moment, and the round
      // seals nothing. Sealed at the next round, as the worker's rounds do; a checkpoint per size.
      const deadline = Date.now() + 20_000;
      const pending = async () =>
        Number(
          (
            await t.superuser.query<{ n: string }>(
              `select (select count(*) from app_public.audit_log where tenant_id = $1)
                      - (select count(*) from app_hidden.audit_leaves where tenant_id = $1) as n`,
              [tenant],
            )
          ).rows[0].n,
        );
      await sealOnce(t.pools.owner, { key, originPrefix: TEST_ORIGIN });
      while ((await pending()) > 0) {
        expect(Date.now(), `round ${round}: entries left unsealed for 20 s`).toBeLessThan(deadline);
        await new Promise((resolve) => setTimeout(resolve, 50));
        await sealOnce(t.pools.owner, { key, originPrefix: TEST_ORIGIN });
      }
    }
    const { rows: cps } = await t.superuser.query(
      "select tree_size::int as size, root_hash from app_public.audit_checkpoints where tenant_id = $1 order by tree_size",
      [tenant],
    );
    expect(cps.length).toBeGreaterThanOrEqual(12);
    for (const a of cps) {
      for (const b of cps) {
        if (a.size >= b.size) continue;
        const { rows } = await t.superuser.query("select (reporting.audit_consistency_proof($1, $2, $3)).proof", [
          tenant,
          a.size,
          b.size,
        ]);
        expect(verifyConsistency(a.size, b.size, (rows[0].proof as string[]).map(hex), a.root_hash, b.root_hash)).toBe(
          true,
        );
      }
    }
  });

  it("catches an edited entry at its position", async () => {
    const v = await tamper([
      "update app_public.audit_log e set resource_label = 'innocent' from app_hidden.audit_leaves l where l.tenant_id = $1 and l.seq = 10 and e.tenant_id = l.tenant_id and e.id = l.entry_id",
    ]);
    expect(v).toMatchObject({ valid: false, first_invalid_seq: "10" });
    expect(v.problem).toMatch(/entry 10 was altered/);
  });

  it("catches a deleted entry at its position", async () => {
    const v = await tamper([
      "delete from app_public.audit_log e using app_hidden.audit_leaves l where l.tenant_id = $1 and l.seq = 10 and e.tenant_id = l.tenant_id and e.id = l.entry_id",
    ]);
    expect(v).toMatchObject({ valid: false, first_invalid_seq: "10" });
  });

  it("catches an entry deleted together with its leaf", async () => {
    const v = await tamper([
      "delete from app_public.audit_log e using app_hidden.audit_leaves l where l.tenant_id = $1 and l.seq = 10 and e.tenant_id = l.tenant_id and e.id = l.entry_id",
      "delete from app_hidden.audit_leaves where tenant_id = $1 and seq = 10",
    ]);
    expect(v).toMatchObject({ valid: false, first_invalid_seq: "10" });
    expect(v.problem).toMatch(/position 10 .* missing/);
  });

  it("catches two entries swapped in the log at the first of them", async () => {
    const v = await tamper([
      "update app_hidden.audit_leaves set seq = 1000000 where tenant_id = $1 and seq = 10",
      "update app_hidden.audit_leaves set seq = 10 where tenant_id = $1 and seq = 11",
      "update app_hidden.audit_leaves set seq = 11 where tenant_id = $1 and seq = 1000000",
    ]);
    expect(v).toMatchObject({ valid: false, first_invalid_seq: "10" });
  });

  it("catches a damaged interior node at its position, and a leaf holding too few nodes", async () => {
    // seq 8 completes the subtrees of 2, 4 and 8 leaves: its first node is hash(leaf 7, leaf 8)
    const damaged = await tamper([
      "update app_hidden.audit_leaves set nodes = overlay(nodes placing sha256('forged') from 1 for 32) where tenant_id = $1 and seq = 8",
    ]);
    expect(damaged).toMatchObject({ valid: false, first_invalid_seq: "8" });
    expect(damaged.problem).toMatch(/tree is damaged at entry 8/);
    const truncated = await tamper([
      "update app_hidden.audit_leaves set nodes = substring(nodes from 1 for 64) where tenant_id = $1 and seq = 8",
    ]);
    expect(truncated).toMatchObject({ valid: false, first_invalid_seq: "8" });
  });

  it("catches an entry moved to another tenant's log (its leaf left behind)", async () => {
    const other = await newTenant("elsewhere");
    const v = await tamper([
      `update app_public.audit_log e set tenant_id = '${other}' from app_hidden.audit_leaves l
        where l.tenant_id = $1 and l.seq = 12 and e.tenant_id = l.tenant_id and e.id = l.entry_id`,
    ]);
    expect(v).toMatchObject({ valid: false, first_invalid_seq: "12" });
  });

  it("names the tampered position, whatever a superuser changes there (property)", async () => {
    const size = Number((await verify(demo)).last_seq);
    const other = await newTenant("property-elsewhere");
    const at = (seq: number) =>
      `from app_hidden.audit_leaves l where l.tenant_id = $1 and l.seq = ${seq} and e.tenant_id = l.tenant_id and e.id = l.entry_id`;
    // Each way of tampering, as the statements that do it at position p.
    const ways: Record<string, (p: number) => string[]> = {
      "edit the name": (p) => [
        `update app_public.audit_log e set resource_label = coalesce(resource_label, '') || 'x' ${at(p)}`,
      ],
      "edit the action": (p) => [`update app_public.audit_log e set action = 'incident.forged' ${at(p)}`],
      "edit the actor": (p) => [`update app_public.audit_log e set actor_label = 'someone@else.example' ${at(p)}`],
      "edit the time": (p) => [
        `update app_public.audit_log e set occurred_at = occurred_at + interval '1 ms' ${at(p)}`,
      ],
      "edit the changes": (p) => [
        `update app_public.audit_log e set changes = changes || '{"forged": {"new": 1}}' ${at(p)}`,
      ],
      "edit the incident": (p) => [`update app_public.audit_log e set incident_id = gen_random_uuid() ${at(p)}`],
      "edit the IP": (p) => [`update app_public.audit_log e set ip = '203.0.113.9' ${at(p)}`],
      // (its leaf covers a v2 body; the bytes of an entry with a v1 hash are its v1 document)
      "mark the entry as a v1 entry": (p) => [
        `update app_public.audit_log e set v1_hash = sha256('forged'::bytea) ${at(p)}`,
      ],
      "delete the entry": (p) => [
        `delete from app_public.audit_log e using app_hidden.audit_leaves l
         where l.tenant_id = $1 and l.seq = ${p} and e.tenant_id = l.tenant_id and e.id = l.entry_id`,
      ],
      "move the entry to another tenant": (p) => [`update app_public.audit_log e set tenant_id = '${other}' ${at(p)}`],
      "edit the leaf's incident link": (p) => [
        `update app_hidden.audit_leaves set incident_prev = coalesce(incident_prev, 'none') || ' ' where tenant_id = $1 and seq = ${p}`,
      ],
      // (positions with interior nodes: the even ones)
      "flip a byte of a node": (p) => [
        `update app_hidden.audit_leaves set nodes = set_byte(nodes, octet_length(nodes) - 1, (get_byte(nodes, octet_length(nodes) - 1) + 1) % 256)
          where tenant_id = $1 and seq = ${p - (p % 2)}`,
      ],
    };
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 2, max: size }), fc.constantFrom(...Object.keys(ways)), async (p, way) => {
        const v = await tamper(ways[way](p));
        const expected = way === "flip a byte of a node" ? p - (p % 2) : p;
        expect(v, `${way} at ${p}`).toMatchObject({ valid: false, first_invalid_seq: String(expected) });
      }),
      { numRuns: 40 },
    );
  });

  it("catches entries removed from the end against the published checkpoint", async () => {
    const v = await tamper([
      "delete from app_hidden.audit_leaves where tenant_id = $1 and seq = (select max(seq) from app_hidden.audit_leaves where tenant_id = $1)",
      "update app_private.audit_trees set size = size - 1 where tenant_id = $1",
    ]);
    expect(v.valid).toBe(false);
  });

  it("catches a rewritten and re-sealed history against an earlier checkpoint", async () => {
    const tenant = await newTenant("rebuilt");
    await t.superuser.query(
      "insert into app_public.incidents (tenant_id, title) select $1, 'r' || g from generate_series(1, 20) g",
      [tenant],
    );
    await sealAll(t.pools.owner);
    expect(await verify(tenant)).toMatchObject({ valid: true, last_seq: "21" });
    // The superuser alters entry 10, throws away the log from there and seals it again: every
    // leaf and node is consistent again, but the checkpoint published before no longer matches.
    const at =
      "from app_hidden.audit_leaves l where l.tenant_id = $1 and l.seq = 10 and e.tenant_id = l.tenant_id and e.id = l.entry_id";
    const rebuild = () =>
      tamper(
        [
          `update app_public.audit_log e set resource_label = 'innocent' ${at}`,
          `update app_private.audit_seal_state s set last_xid = e.xid, last_id = e.id
           from app_public.audit_log e join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
          where l.tenant_id = $1 and l.seq = 9`,
          "delete from app_hidden.audit_leaves where tenant_id = $1 and seq >= 10",
          `update app_private.audit_trees set size = 9,
           frontier = array[(select leaf_hash from app_hidden.audit_leaves where tenant_id = $1 and seq = 9), null, null,
                            (select substring(nodes from 2 * 32 + 1 for 32) from app_hidden.audit_leaves where tenant_id = $1 and seq = 8)]
         where tenant_id = $1`,
          "select count(*) from app_private.seal_audit_entries(1000000) where $1::uuid is not null",
        ],
        tenant,
      );
    // (the re-seal waits for older transactions of the database, e.g. autovacuum's: try again)
    let v = await rebuild();
    for (let i = 0; i < 10 && v.last_seq !== "21"; i++) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      v = await rebuild();
    }
    expect(v).toMatchObject({ valid: false, first_invalid_seq: "21", last_seq: "21" });
    expect(v.problem).toMatch(/no longer matches its checkpoint at 21/);
  });

  it("refuses an INSERT into the log by anyone but the capture triggers, and edits by the owner", async () => {
    const owner = t.pools.owner;
    await expect(
      owner.query(
        "insert into app_public.audit_log (tenant_id, action, resource_type, actor_label, db_role, surface, occurred_at) values ($1, 'x.y', 'x', '', '', 'sql', now())",
        [demo],
      ),
    ).rejects.toMatchObject({ code: "42501" });
    await expect(
      owner.query("update app_hidden.audit_leaves set nodes = '\\x' where tenant_id = $1 and seq = 1", [demo]),
    ).rejects.toMatchObject({ code: "42501" });
    await expect(
      owner.query("delete from app_public.audit_checkpoints where tenant_id = $1", [demo]),
    ).rejects.toMatchObject({ code: "42501" });
    await expect(
      owner.query(
        "insert into app_public.audit_checkpoints (tenant_id, tree_size, root_hash, origin, note, key_fingerprint) values ($1, 1, sha256('x'), 'o', 'n', 'f')",
        [demo],
      ),
    ).rejects.toMatchObject({ code: "42501" });
    // Even a superuser cannot record a checkpoint that is not a state of the log.
    await expect(
      t.superuser.query(
        "insert into app_public.audit_checkpoints (tenant_id, tree_size, root_hash, origin, note, key_fingerprint) values ($1, 1, sha256('x'), 'o', 'n', 'f')",
        [demo],
      ),
    ).rejects.toMatchObject({ code: "23514" });
  });
});
