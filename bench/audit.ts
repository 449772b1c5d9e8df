/**
 * npm run bench:audit — what auditing costs and how fast the log is sealed and verified, on a
 * fresh database (BENCH_PG_URL, default the PostgreSQL at 127.0.0.1:5432; a superuser URL).
 *
 *  1. writes: pgbench, single-row INSERT and UPDATE of incidents, 4 clients, over 50 tenants and
 *     in 1 tenant; audited (capture trigger on, the sealer running) and plain (the same table with
 *     the capture trigger disabled), alternated; prints tps and audited ÷ plain (targets ≥ 0.80 over
 *     50 tenants, ≥ 0.75 in one).
 *  2. no tenant lock: one transaction holds an audited write in tenant T open; another writer of T
 *     commits 20 writes meanwhile (lock_timeout 50 ms: a lock wait that long fails), and the same 20
 *     without the open transaction; prints both and the delay (median difference; target < 50 ms).
 *  3. seal latency at a fixed rate (pgbench --rate, default 1,000 writes/s): commit of the sealer's
 *     round − capture time of each entry; p50/p99 (target p99 ≤ 2 s).
 *  4. backlog catch-up: N entries captured with the sealer stopped, then sealed; entries/s
 *     (target ≥ 50,000/s); then their names kept for the search, as the worker does after sealing.
 *  5. SQL verification of a tenant (app_public.verify_audit_chain): entries/s (target ≥ 200,000/s).
 *  6. one statement changing N rows of one tenant, audited ÷ plain, for growing N (target ≤ 3×
 *     at 200,000, growing linearly).
 *
 * Knobs: BENCH_SECONDS (per pgbench run, default 10), BENCH_ROUNDS (pairs per scenario, 3),
 * BENCH_RATE (writes/s for 3., 1000), BENCH_BACKLOG (entries for 4. and 5., 200000),
 * BENCH_BULK (largest N for 6., 200000), BENCH_ONLY (e.g. "4,5": run only those parts),
 * BENCH_KEEP=1 keeps the database.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { activeSigningKey } from "../src/audit/keys.ts";
import { checkpointPacing, nameOnce, sealOnce } from "../src/audit/sealer.ts";
import { prepareDatabase, withDatabase } from "../src/db/setup.ts";
import { machineReport } from "./machine.ts";

const run = promisify(execFile);
const ADMIN = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const RATE = Number(process.env.BENCH_RATE ?? 1000);
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 200_000);
const BULK = Number(process.env.BENCH_BULK ?? 200_000);
const ONLY = new Set((process.env.BENCH_ONLY ?? "1,2,3,4,5,6").split(",").map((x) => x.trim()));
const TENANTS = 50;
const INCIDENTS_PER_TENANT = 200;
const ORIGIN = "attest.bench";

const name = `attest_bench_${randomBytes(4).toString("hex")}`;
const url = withDatabase(ADMIN, name);
const db = await prepareDatabase({ adminUrl: url, log: () => {} });
const su = new pg.Pool({ connectionString: url, max: 4 });
const owner = new pg.Pool({ ...db.owner, max: 4 });
const tmp = await fs.mkdtemp(path.join(os.tmpdir(), "attest-bench-"));
const out = (line: string) => process.stdout.write(`${line}\n`);
const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))];
};

async function sealEverything(): Promise<number> {
  const key = await activeSigningKey(owner);
  let total = 0;
  for (;;) {
    const r = await sealOnce(owner, { key, originPrefix: ORIGIN, maxEntries: 50_000 });
    total += r.sealed;
    if (r.sealed === 0) return total;
  }
}

/**
 * A sealer loop like the worker's (200 ms pause when idle). `commits` maps each round's
 * transaction time (the leaves' sealed_at) to when the round committed, for latencies.
 */
function sealerLoop(options: { commits?: Map<number, number> }) {
  let stopped = false;
  const done = (async () => {
    const key = await activeSigningKey(owner);
    const pacing = checkpointPacing(1000); // as the worker's sealer (ATTEST_CHECKPOINT_INTERVAL_MS)
    while (!stopped) {
      const r = await sealOnce(owner, { key, originPrefix: ORIGIN, maxEntries: 50_000, pacing });
      if (r.sealed > 0 && r.sealedAt) options.commits?.set(r.sealedAt.getTime(), Date.now());
      const named = await nameOnce(owner, 50_000); // the search's names, as the worker keeps them
      if (r.sealed < 50_000 && named < 50_000) await new Promise((resolve) => setTimeout(resolve, 200));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await done;
    },
  };
}

async function setCapture(on: boolean) {
  for (const op of ["insert", "update", "delete"]) {
    await su.query(`alter table app_public.incidents ${on ? "enable" : "disable"} trigger _500_audit_${op}`);
  }
}

async function pgbench(script: string, tenants: number, extra: string[] = []): Promise<number> {
  const file = path.join(tmp, "script.sql");
  await fs.writeFile(file, script);
  const { stdout } = await run(
    "pgbench",
    ["-n", "-c", "4", "-j", "2", "-T", String(SECONDS), "-D", `tenants=${tenants}`, "-f", file, ...extra, url],
    { maxBuffer: 1 << 24 },
  );
  const tps = stdout.match(/tps = ([0-9.]+)/);
  if (!tps) throw new Error(`pgbench printed no tps:\n${stdout}`);
  return Number(tps[1]);
}

const INSERT = `\\set t random(1, :tenants)
insert into app_public.incidents (tenant_id, title, severity)
  select id, 'bench incident', 'medium' from bench.tenants where n = :t;
`;
const UPDATE = `\\set t random(1, :tenants)
\\set k random(1, ${INCIDENTS_PER_TENANT})
update app_public.incidents i set description = md5(random()::text)
  from bench.incidents b where b.n = :t and b.k = :k and i.tenant_id = b.tenant_id and i.id = b.id;
`;

try {
  out(
    `bench:audit on ${new URL(ADMIN).host} (${(await su.query("show server_version")).rows[0].server_version}), database ${name}`,
  );
  const machineEnd = machineReport(out);
  await su.query("create schema bench");
  await su.query("create table bench.tenants (n int primary key, id uuid not null)");
  await su.query(
    `with t as (insert into app_public.tenants (slug, name, plan_id)
                select 'bench-' || g, 'Bench ' || g, 'business' from generate_series(1, ${TENANTS}) g returning id, slug)
     insert into bench.tenants select split_part(slug, '-', 2)::int, id from t`,
  );
  await su.query(
    `create table bench.incidents as
     select t.n, g as k, t.id as tenant_id, gen_random_uuid() as id from bench.tenants t, generate_series(1, ${INCIDENTS_PER_TENANT}) g`,
  );
  await su.query("alter table bench.incidents add primary key (n, k)");
  await su.query(
    "insert into app_public.incidents (tenant_id, id, title) select tenant_id, id, 'bench ' || k from bench.incidents",
  );
  await su.query("vacuum analyze");
  out(
    `prepared ${TENANTS} tenants × ${INCIDENTS_PER_TENANT} incidents; sealing ${fmt(await sealEverything())} entries`,
  );

  // 1. Audited vs plain writes.
  if (ONLY.has("1"))
    out("\n1. writes per second, 4 clients (audited = capture on + sealer running; plain = capture triggers disabled)");
  for (const [label, script] of ONLY.has("1")
    ? ([
        ["INSERT", INSERT],
        ["UPDATE", UPDATE],
      ] as const)
    : []) {
    for (const tenants of [TENANTS, 1]) {
      const audited: number[] = [];
      const plain: number[] = [];
      for (let r = 0; r < ROUNDS; r++) {
        await setCapture(true);
        const sealer = sealerLoop({});
        audited.push(await pgbench(script, tenants));
        await sealer.stop();
        await setCapture(false);
        plain.push(await pgbench(script, tenants));
      }
      await setCapture(true);
      const ratio = median(audited) / median(plain);
      const target = tenants === 1 ? 0.75 : 0.8;
      out(
        `   ${label} ${String(tenants).padStart(2)} tenant${tenants === 1 ? " " : "s"}: audited ${fmt(median(audited))} tps, plain ${fmt(median(plain))} tps → ratio ${fmt(ratio, 2)} (target ≥ ${target}) ${ratio >= target ? "MET" : "NOT MET"}   [runs: ${audited.map((x) => fmt(x)).join("/")} vs ${plain.map((x) => fmt(x)).join("/")}]`,
      );
    }
  }
  await sealEverything();

  // 2. No tenant lock. A single write's time is mostly its commit's flush (tens of ms on a slow
  // disk), so the same writes are timed without the open transaction too, and each write runs with
  // lock_timeout = 50 ms: one that had to wait that long for the open transaction would fail.
  if (ONLY.has("2")) {
    const tenant = (await su.query("select id from bench.tenants where n = 1")).rows[0].id;
    const writer = await su.connect();
    const timedWrites = async () => {
      const times: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        await writer.query("insert into app_public.incidents (tenant_id, title) values ($1, 'second writer')", [
          tenant,
        ]);
        times.push(performance.now() - t0);
      }
      return times;
    };
    const holder = await su.connect();
    let alone: number[] = [];
    let beside: number[] = [];
    let blocked = 0;
    try {
      await writer.query("set lock_timeout = '50ms'");
      alone = await timedWrites();
      await holder.query("begin");
      await holder.query("insert into app_public.incidents (tenant_id, title) values ($1, 'held open')", [tenant]);
      beside = await timedWrites().catch((error) => {
        if ((error as { code?: string }).code !== "55P03") throw error;
        blocked++;
        return [];
      });
      await holder.query("commit");
    } finally {
      await writer.query("reset lock_timeout").catch(() => {});
      holder.release();
      writer.release();
    }
    const delay = blocked > 0 ? Number.POSITIVE_INFINITY : median(beside) - median(alone);
    out(
      `\n2. another writer of a tenant while a transaction holds an audited write there open: ${blocked > 0 ? "a write waited ≥ 50 ms for a lock" : "no write waited 50 ms for a lock"}; per write (20 each) median ${fmt(median(beside), 1)} / max ${fmt(Math.max(...beside), 1)} ms, without the open transaction ${fmt(median(alone), 1)} / ${fmt(Math.max(...alone), 1)} ms: delay ${fmt(delay, 1)} ms (target < 50 ms) ${delay < 50 ? "MET" : "NOT MET"}`,
    );
  }

  // 3. Seal latency at a fixed rate.
  if (ONLY.has("3")) {
    await sealEverything();
    const commits = new Map<number, number>();
    const since = new Date();
    const sealer = sealerLoop({ commits });
    const tps = await pgbench(INSERT, TENANTS, ["--rate", String(RATE)]);
    await new Promise((resolve) => setTimeout(resolve, 2500));
    await sealer.stop();
    const { rows } = await su.query<{ sealed: Date; occurred: number }>(
      `select l.sealed_at as sealed, (extract(epoch from e.occurred_at) * 1000)::float8 as occurred
       from app_public.audit_log e join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
       where e.occurred_at >= $1`,
      [since],
    );
    const latencies = rows
      .map((r) => (commits.get(r.sealed.getTime()) ?? Number.NaN) - r.occurred)
      .filter(Number.isFinite);
    const p50 = quantile(latencies, 0.5);
    const p99 = quantile(latencies, 0.99);
    out(
      `\n3. seal latency at ${fmt(tps)} audited writes/s: p50 ${fmt(p50)} ms, p99 ${fmt(p99)} ms over ${fmt(latencies.length)} entries (target p99 ≤ 2,000 ms) ${p99 <= 2000 ? "MET" : "NOT MET"}`,
    );
  }

  // 4. Backlog catch-up (and 5. verification of that tenant).
  if (ONLY.has("4") || ONLY.has("5")) {
    await sealEverything();
    const tenant = (await su.query("select id from bench.tenants where n = 2")).rows[0].id;
    await su.query(
      `insert into app_public.incidents (tenant_id, title, description)
       select $1, 'backlog ' || g, repeat('x', 200) from generate_series(1, ${BACKLOG}) g`,
      [tenant],
    );
    const t0 = performance.now();
    const sealed = await sealEverything();
    const seconds = (performance.now() - t0) / 1000;
    const rate = sealed / seconds;
    out(
      `\n4. backlog catch-up: ${fmt(sealed)} entries sealed in ${fmt(seconds, 2)} s = ${fmt(rate)} entries/s (target ≥ 50,000/s) ${rate >= 50_000 ? "MET" : "NOT MET"}`,
    );
    // The worker then keeps their names for the search (after sealing, in transactions of its own).
    const n0 = performance.now();
    let named = 0;
    for (let n = await nameOnce(owner, 50_000); n > 0; n = await nameOnce(owner, 50_000)) named += n;
    const nseconds = (performance.now() - n0) / 1000;
    out(
      `   and their names for the search (each entry a new name): ${fmt(named)} entries in ${fmt(nseconds, 2)} s = ${fmt(named / nseconds)} entries/s`,
    );

    // 5. SQL verification of that tenant.
    const v0 = performance.now();
    const { rows } = await su.query("select valid, last_seq from app_public.verify_audit_chain($1)", [tenant]);
    const vs = (performance.now() - v0) / 1000;
    const vrate = Number(rows[0].last_seq) / vs;
    out(
      `\n5. SQL verification: ${fmt(Number(rows[0].last_seq))} entries (valid: ${rows[0].valid}) in ${fmt(vs, 2)} s = ${fmt(vrate)} entries/s (target ≥ 200,000/s) ${vrate >= 200_000 ? "MET" : "NOT MET"}`,
    );
  }

  // 6. One statement changing N rows of one tenant.
  if (ONLY.has("6")) {
    out(
      "\n6. one INSERT statement of N incidents in one tenant, audited ÷ plain (target ≤ 3× at 200,000, linear in N)",
    );
    const tenant = (await su.query("select id from bench.tenants where n = 3")).rows[0].id;
    const timed = async (n: number) => {
      const t0 = performance.now();
      await su.query(
        `insert into app_public.incidents (tenant_id, title) select $1, 'bulk ' || g from generate_series(1, ${n}) g`,
        [tenant],
      );
      return (performance.now() - t0) / 1000;
    };
    for (let n = Math.max(1000, Math.floor(BULK / 8)); n <= BULK; n *= 2) {
      await setCapture(false);
      const plain = await timed(n);
      await setCapture(true);
      const audited = await timed(n);
      const ratio = audited / plain;
      out(
        `   N = ${fmt(n).padStart(7)}: audited ${fmt(audited, 2)} s (${fmt((audited / n) * 1e6, 1)} µs/row), plain ${fmt(plain, 2)} s → ${fmt(ratio, 2)}× ${n === BULK ? (ratio <= 3 ? "MET" : "NOT MET") : ""}`,
      );
    }
    const t0 = performance.now();
    const sealed = await sealEverything();
    out(`   then sealed ${fmt(sealed)} entries in ${fmt((performance.now() - t0) / 1000, 2)} s`);
  }
  out("");
  machineEnd();
} finally {
  await owner.end();
  await su.end();
  await fs.rm(tmp, { recursive: true, force: true });
  if (!process.env.BENCH_KEEP) {
    const admin = new pg.Client({ connectionString: ADMIN });
    await admin.connect();
    await admin.query(`drop database if exists "${name}" with (force)`);
    const roles = await admin.query<{ rolname: string }>("select rolname from pg_roles where rolname like $1", [
      `${name}\\_%`,
    ]);
    for (const { rolname } of roles.rows) await admin.query(`drop role if exists "${rolname}"`);
    await admin.end();
  }
}
