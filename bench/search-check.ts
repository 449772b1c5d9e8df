/**
 * npm run bench:search-check — the search at scale, checked against brute force.
 *
 * GraphQL's `auditLogs` with `resourceLabelContains` / `actorContains` (and an action, a person, a
 * time window, a cursor, either order, any page size) is answered by
 * app_hidden.audit_connection_ids, which reads the names and counts the namer keeps per day and
 * month (their trigram keys, characters, pairs and runs of three, actions and people) rather than the
 * log. Those structures only show their worth, and their mistakes, at size: this runs random
 * conditions, seeded (fast-check), against the history bench:pages built (BENCH_DB, default
 * attest_bench_pages on BENCH_PG_URL; run bench:pages first), as the visitor role with a tenant's
 * API token exactly as the GraphQL route calls it, and compares every answer, in order, with the
 * same condition read from the whole log by the database owner (ILIKE over every entry of the
 * tenant). Words are taken from the tenant's own names and people (substrings, case changed) or
 * made of letters, digits, spaces and marks; each mismatch is printed with what reproduces it.
 * Each condition runs once, on one connection: its time includes planning a statement's first use
 * and reading pages not in memory yet, so the times point at the conditions that cost, not at a
 * steady state (bench:pages measures that).
 *
 * Each case's `totalCount` is checked too: app_hidden.audit_connection_count, as the GraphQL route
 * calls it for the same condition (GraphQL field names; one action as `action`, several as an
 * `actionPrefix` they share, or the case's first), without a kept base and then again with the base
 * the first count handed back, against count(*) over the whole log.
 *
 * CHECK_TENANT (default mid-1: 200,000 entries, quick to read whole; `big` holds 2,000,000),
 * CHECK_CASES (default 300), CHECK_SLOWEST (how many of the slowest to print, default 5),
 * CHECK_SEED (default: the time; printed: the same seed on the same history draws the same
 * conditions). Exits 1 on a mismatch.
 */
import "../src/env-defaults.ts";
import fc from "fast-check";
import pg from "pg";
import { likeContaining, likePrefix } from "../src/db/like.ts";
import { roleNames, rolePrefixFor, withDatabase } from "../src/db/setup.ts";
import { connectionFilter } from "../src/graphql/audit-log.ts";
import { STATEMENT_TIMEOUT_MS } from "../src/graphql/index.ts";

const ADMIN = process.env.BENCH_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";
const DB = process.env.BENCH_DB ?? "attest_bench_pages";
const SLUG = process.env.CHECK_TENANT ?? "mid-1";
const out = (line: string) => process.stdout.write(`${line}\n`);
/** A whole number setting of this script, or a clear refusal. */
function count(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d{1,9}$/.test(raw)) {
    out(`${name} must be a whole number (0 or more), not ${JSON.stringify(raw)}`);
    process.exit(2);
  }
  return Number(raw);
}
const CASES = count("CHECK_CASES", 300);
const SLOWEST = count("CHECK_SLOWEST", 5);
/** GraphQL's statement timeout, which a count runs under. */
const COUNT_TIMEOUT_MS = STATEMENT_TIMEOUT_MS;
const SEED = count("CHECK_SEED", Date.now() % 1_000_000);
const url = withDatabase(ADMIN, DB);

interface Case {
  label?: string;
  actor?: string;
  actions: string[];
  person?: string;
  from?: string;
  to?: string;
  cursor?: { at: string; id: string };
  ascending: boolean;
  limit: number;
}

const owner = new pg.Client({ connectionString: url, options: "-c jit=off" });
await owner.connect().catch((error: Error) => {
  out(`cannot reach ${DB} (${error.message}): build it with npm run bench:pages first`);
  process.exit(1);
});
const found = await owner
  .query<{ id: string; token: string }>(
    "select t.id, b.tenant->>'apiToken' as token from bench_pages.tenants b join app_public.tenants t using (slug) where b.slug = $1",
    [SLUG],
  )
  .catch(() => ({ rows: [] as Array<{ id: string; token: string }> }));
if (!found.rows[0]) {
  out(`no tenant ${SLUG} in ${DB}'s bench history: build it with npm run bench:pages first`);
  process.exit(1);
}
const { id: tenant, token } = found.rows[0];
// The names, people and points in time the cases draw from: the same ones for the same seed and history.
const column = async (sql: string) =>
  (await owner.query<{ v: string }>(sql, [tenant, String(SEED)])).rows.map((r) => r.v);
const names = await column(
  "select resource_label as v from app_public.audit_log where tenant_id = $1 order by md5(id || $2) limit 500",
);
const people = await column(
  "select distinct actor_label as v from app_public.audit_log where tenant_id = $1 and $2 <> '' order by 1",
);
const actions = await column(
  "select distinct action as v from app_public.audit_log where tenant_id = $1 and $2 <> '' order by 1",
);
const points = (
  await owner.query<{ at: Date; id: string }>(
    "select occurred_at as at, id from app_public.audit_log where tenant_id = $1 order by md5($2 || id) limit 300",
    [tenant, String(SEED)],
  )
).rows.map((r) => ({ at: r.at.toISOString(), id: String(r.id) }));

/** A piece of one of the texts, its letters' case changed or not. */
const pieceOf = (texts: string[], longest: number) =>
  fc
    .tuple(fc.constantFrom(...texts), fc.nat(), fc.integer({ min: 1, max: longest }), fc.boolean(), fc.nat())
    .map(([text, start, length, recase, bits]) => {
      const from = start % Math.max(1, text.length - length + 1);
      const piece = text.slice(from, from + length);
      return recase
        ? [...piece].map((c, i) => ((bits >> (i % 30)) & 1 ? c.toUpperCase() : c.toLowerCase())).join("")
        : piece;
    });
const made = fc
  .array(fc.constantFrom(..."aeiourstnl0159#- :.@_%\\é"), { minLength: 1, maxLength: 4 })
  .map((cs) => cs.join(""));
const word = fc.oneof(
  { weight: 6, arbitrary: pieceOf(names, 8) },
  { weight: 2, arbitrary: made },
  {
    weight: 2,
    arbitrary: fc.tuple(pieceOf(names, 4), pieceOf(names, 3)).map(([a, b]) => `${a} ${b}`),
  },
);
const window = fc.tuple(fc.constantFrom(...points), fc.constantFrom(...points), fc.integer({ min: 1, max: 96 }));
const caseArb: fc.Arbitrary<Case> = fc
  .record({
    field: fc.constantFrom("label", "label", "actor", "both"),
    label: word,
    actor: pieceOf(people, 6),
    actions: fc.oneof(
      { weight: 4, arbitrary: fc.constant([] as string[]) },
      { weight: 5, arbitrary: fc.constantFrom(...actions).map((a) => [a]) },
      { weight: 1, arbitrary: fc.uniqueArray(fc.constantFrom(...actions), { minLength: 2, maxLength: 3 }) },
    ),
    person: fc.option(fc.constantFrom(...people), { freq: 6 }),
    window: fc.option(fc.tuple(window, fc.constantFrom("from", "to", "both", "hours")), { freq: 2 }),
    cursor: fc.option(fc.constantFrom(...points), { freq: 2 }),
    ascending: fc.boolean(),
    limit: fc.oneof(
      { weight: 4, arbitrary: fc.constant(26) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 101 }) },
    ),
  })
  .map((r) => {
    const c: Case = { actions: r.actions, ascending: r.ascending, limit: r.limit };
    if (r.field !== "actor") c.label = r.label;
    if (r.field !== "label") c.actor = r.actor;
    else if (r.person) c.person = r.person;
    if (r.window) {
      const [[a, b, hours], kind] = r.window;
      const [lo, hi] = a.at < b.at ? [a.at, b.at] : [b.at, a.at];
      if (kind !== "to") c.from = lo;
      if (kind === "to" || kind === "both") c.to = hi;
      if (kind === "hours") c.to = new Date(Date.parse(lo) + hours * 3_600_000).toISOString();
    }
    if (r.cursor) c.cursor = r.cursor;
    return c;
  });

/**
 * The condition as the GraphQL route hands it to audit_connection_ids (connectionFilter, from the
 * condition's fields); several actions at once, which GraphQL's `action` cannot ask, as the page's
 * action filter hands them.
 */
function filterOf(c: Case): Record<string, unknown> {
  const given: Array<[string, unknown]> = [];
  if (c.label !== undefined) given.push(["resourceLabelContains", c.label]);
  if (c.actor !== undefined) given.push(["actorContains", c.actor]);
  if (c.actions.length === 1) given.push(["action", c.actions[0]]);
  if (c.person !== undefined) given.push(["actorLabel", c.person]);
  if (c.from !== undefined) given.push(["occurredAfter", c.from]);
  if (c.to !== undefined) given.push(["occurredBefore", c.to]);
  const filter = connectionFilter(given);
  if (c.actions.length > 1) filter.actions = c.actions;
  return filter;
}

/** What reproduces a case: the route's arguments. */
const describe = (c: Case) =>
  JSON.stringify({ filter: filterOf(c), cursor: c.cursor, ascending: c.ascending, limit: c.limit });

/** The condition's own WHERE over the log (without the cursor), its values from `first` on. */
function conditionSql(c: Case, values: unknown[], actions: [(n: string) => string, unknown]): string[] {
  const where: string[] = [];
  const add = (sql: (n: string) => string, value: unknown) => {
    values.push(value);
    where.push(sql(`$${values.length}`));
  };
  if (c.label !== undefined) add((n) => `resource_label ilike ${n}`, likeContaining(c.label));
  if (c.actor !== undefined) add((n) => `actor_label ilike ${n}`, likeContaining(c.actor));
  if (c.actions.length > 0) add(...actions);
  if (c.person !== undefined) add((n) => `actor_label = ${n}`, c.person);
  if (c.from !== undefined) add((n) => `occurred_at >= ${n}::timestamptz`, c.from);
  if (c.to !== undefined) add((n) => `occurred_at < ${n}::timestamptz`, c.to);
  return where;
}

/** The same condition over every entry of the tenant. */
async function bruteForce(c: Case): Promise<string[]> {
  const values: unknown[] = [tenant];
  const where = ["tenant_id = $1", ...conditionSql(c, values, [(n) => `action = any (${n}::text[])`, c.actions])];
  if (c.cursor) {
    values.push(c.cursor.at, c.cursor.id);
    where.push(
      `(occurred_at, id) ${c.ascending ? ">" : "<"} ($${values.length - 1}::timestamptz, $${values.length}::bigint)`,
    );
  }
  const dir = c.ascending ? "asc" : "desc";
  values.push(c.limit);
  const { rows } = await owner.query<{ id: string }>(
    `select id from app_public.audit_log where ${where.join(" and ")} order by occurred_at ${dir}, id ${dir} limit $${values.length}`,
    values,
  );
  return rows.map((r) => String(r.id));
}

/**
 * The actions as a GraphQL condition can give them: one as `action`; several as the
 * `actionPrefix` of their first one's kind ("incident." for incident.created and
 * incident.updated), or, when that is all there is, that one action.
 */
function countActions(c: Case): { field: "action" | "actionPrefix"; value: string } {
  if (c.actions.length === 1) return { field: "action", value: c.actions[0] };
  const kind = c.actions[0].slice(0, c.actions[0].indexOf(".") + 1);
  return kind ? { field: "actionPrefix", value: kind } : { field: "action", value: c.actions[0] };
}

/** The case as GraphQL's `condition` (what the count is handed). */
function countCondition(c: Case): Record<string, string> {
  const condition: Record<string, string> = {};
  if (c.label !== undefined) condition.resourceLabelContains = c.label;
  if (c.actor !== undefined) condition.actorContains = c.actor;
  if (c.actions.length > 0) {
    const { field, value } = countActions(c);
    condition[field] = value;
  }
  if (c.person !== undefined) condition.actorLabel = c.person;
  if (c.from !== undefined) condition.occurredAfter = c.from;
  if (c.to !== undefined) condition.occurredBefore = c.to;
  return condition;
}

/** The case's count over every entry of the tenant. */
async function bruteCount(c: Case): Promise<number> {
  const values: unknown[] = [tenant];
  const { field, value } = c.actions.length > 0 ? countActions(c) : { field: "action", value: null };
  const actions: [(n: string) => string, unknown] =
    field === "action" ? [(n) => `action = ${n}`, value] : [(n) => `action like ${n}`, likePrefix(value as string)];
  const where = ["tenant_id = $1", ...conditionSql(c, values, actions)];
  const { rows } = await owner.query<{ n: string }>(
    `select count(*) as n from app_public.audit_log where ${where.join(" and ")}`,
    values,
  );
  return Number(rows[0].n);
}

const visitor = new pg.Client({ connectionString: url, options: "-c jit=off" });
await visitor.connect();
const { visitor: visitorRole } = roleNames(rolePrefixFor(DB)); // as the installation derives them
async function route(c: Case): Promise<{ ids: string[]; ms: number }> {
  await visitor.query("begin");
  try {
    await visitor.query(
      "select set_config('role', $1, true), set_config('attest.api_token', $2, true), set_config('attest.surface', 'graphql', true)",
      [visitorRole, token],
    );
    const started = performance.now();
    const { rows } = await visitor.query<{ ids: string[] }>(
      "select app_hidden.audit_connection_ids($1::jsonb, $2::timestamptz, $3::bigint, $4, $5) as ids",
      [JSON.stringify(filterOf(c)), c.cursor?.at ?? null, c.cursor?.id ?? null, c.ascending, c.limit],
    );
    const ms = performance.now() - started;
    return { ids: rows[0].ids.map(String), ms };
  } finally {
    await visitor.query("rollback");
  }
}

/**
 * The case's totalCount as the GraphQL route asks for it (statement_timeout as GraphQL sets it:
 * a count that runs out is reported as such), given `bases` (what an earlier count handed back).
 */
async function routeCount(c: Case, bases: unknown): Promise<{ n: number; base: unknown; ms: number }> {
  await visitor.query("begin");
  try {
    await visitor.query(
      "select set_config('role', $1, true), set_config('attest.api_token', $2, true), set_config('attest.surface', 'graphql', true), set_config('statement_timeout', $3, true)",
      [visitorRole, token, String(COUNT_TIMEOUT_MS)],
    );
    const started = performance.now();
    const { rows } = await visitor.query<{ r: { n: number; base?: unknown } }>(
      "select app_hidden.audit_connection_count($1::jsonb, $2::jsonb) as r",
      [JSON.stringify(countCondition(c)), JSON.stringify(bases)],
    );
    const ms = performance.now() - started;
    return { n: rows[0].r.n, base: rows[0].r.base ?? null, ms };
  } finally {
    await visitor.query("rollback");
  }
}

out(`bench:search-check — ${CASES} random conditions in tenant ${SLUG} of ${DB} (CHECK_SEED=${SEED})`);
const cases = fc.sample(caseArb, { seed: SEED, numRuns: CASES });
let mismatches = 0;
const times: number[] = [];
const slowest: Array<{ ms: number; c: Case }> = [];
const countTimes: number[] = [];
const slowestCounts: Array<{ ms: number; c: Case }> = [];
let timedOut = 0;
for (const c of cases) {
  let got: { ids: string[]; ms: number };
  try {
    got = await route(c);
  } catch (error) {
    mismatches++;
    out(`ERROR ${describe(c)}: ${(error as Error).message}`);
    await checkCount(c);
    continue;
  }
  times.push(got.ms);
  slowest.push({ ms: got.ms, c });
  const want = await bruteForce(c);
  if (got.ids.length !== want.length || got.ids.some((id, i) => id !== want[i])) {
    mismatches++;
    out(
      `MISMATCH ${describe(c)}: ` +
        `route gave ${got.ids.length} (${got.ids.slice(0, 4).join(", ")}…), the log holds ${want.length} (${want.slice(0, 4).join(", ")}…)`,
    );
  }
  await checkCount(c);
}
/** The case's totalCount, without a base and then from the base it handed back, against count(*). */
async function checkCount(c: Case) {
  const condition = JSON.stringify(countCondition(c));
  let first: Awaited<ReturnType<typeof routeCount>>;
  let again: Awaited<ReturnType<typeof routeCount>>;
  try {
    first = await routeCount(c, null);
    again = await routeCount(c, first.base);
  } catch (error) {
    if ((error as { code?: string }).code === "57014") {
      timedOut++;
      countTimes.push(COUNT_TIMEOUT_MS);
      slowestCounts.push({ ms: COUNT_TIMEOUT_MS, c });
      out(`COUNT TIMEOUT (${COUNT_TIMEOUT_MS / 1000} s) ${condition}`);
      return;
    }
    mismatches++;
    out(`COUNT ERROR ${condition}: ${(error as Error).message}`);
    return;
  }
  countTimes.push(first.ms);
  slowestCounts.push({ ms: first.ms, c });
  const want = await bruteCount(c);
  if (first.n !== want || again.n !== want) {
    mismatches++;
    out(`COUNT MISMATCH ${condition}: gave ${first.n}, from its base ${again.n}; the log holds ${want}`);
  }
}

times.sort((a, b) => a - b);
countTimes.sort((a, b) => a - b);
slowestCounts.sort((a, b) => b.ms - a.ms);
slowest.sort((a, b) => b.ms - a.ms);
out("slowest:");
for (const { ms, c } of slowest.slice(0, SLOWEST)) {
  out(`  ${ms.toFixed(1)} ms ${describe(c)}`);
}
out("slowest first counts:");
for (const { ms, c } of slowestCounts.slice(0, SLOWEST)) {
  out(`  ${ms.toFixed(1)} ms ${JSON.stringify(countCondition(c))}`);
}
const quantile = (sorted: number[]) => (q: number) =>
  (sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0).toFixed(1);
const at = quantile(times);
const countAt = quantile(countTimes);
out(
  `${CASES} cases, ${mismatches} mismatches; the route's time in the database p50 ${at(0.5)} ms, p95 ${at(0.95)} ms, max ${at(1)} ms; ` +
    `the first count's p50 ${countAt(0.5)} ms, p95 ${countAt(0.95)} ms, max ${countAt(1)} ms, ${timedOut} ran out of time`,
);
await visitor.end();
await owner.end();
process.exit(mismatches > 0 ? 1 : 0);
