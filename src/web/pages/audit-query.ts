/**
 * What the Audit Log page asks of the database, and how, so that every view costs the same at
 * 300 entries and at 2,000,000: its filters (all in the URL), keyset positions (first, newer,
 * older, last, a date), the viewer's time zone, counts that are exact when cheap and honest
 * otherwise, and the per-day chart from the activity the sealer keeps. The strategies live in
 * SQL (`app_hidden.audit_find`, `audit_count`, `audit_activity`, migration 000009); this module
 * builds their arguments and reads their answers as the signed-in user, so row-level security
 * and those functions' own checks decide what is seen.
 */
import type pg from "pg";
import { prepared } from "../../db/context.ts";
import { likeContaining } from "../../db/like.ts";
import { API_TOKEN_NAME, ENTRY_COLUMNS, type EntryRow } from "./audit-entry.ts";

export const PAGE_SIZE = 25;
/** Counts stop here ("more than 10,000"). */
export const COUNT_CAP = 10_000;
/** A count that cannot finish within this budget is shown as "many" instead. */
const COUNT_BUDGET_MS = 15;
/** Logs up to this many entries are counted without a budget (it cannot take long). */
const UNBUDGETED_COUNT = 50_000;
/** The chart shows at most this many days: the last ones of the filtered range, never later than today. */
export const CHART_DAYS = 92;

export const SURFACES = ["web", "graphql", "api", "worker", "sql", "seed"] as const;
const HOUR = 3_600_000;
export const RANGES: Record<string, { label: string; interval: string; ms: number }> = {
  "1h": { label: "Last hour", interval: "1 hour", ms: HOUR },
  "24h": { label: "Last 24 hours", interval: "24 hours", ms: 24 * HOUR },
  "7d": { label: "Last 7 days", interval: "7 days", ms: 7 * 24 * HOUR },
  "30d": { label: "Last 30 days", interval: "30 days", ms: 30 * 24 * HOUR },
};

export interface AuditFilters {
  /** Search: action, user (email or name) or resource, including an incident's current title. */
  q: string;
  actions: string[];
  actor: string;
  incident: string;
  surface: string;
  ip: string;
  /** A preset window ending now (RANGES), instead of from/to. */
  range: string;
  /** Local date (YYYY-MM-DD) or date and time (YYYY-MM-DDTHH:MM) in the page's time zone. */
  from: string;
  to: string;
}

/** Where in the filtered log the page is: keyset positions, never an offset. */
export type AuditPosition =
  | { kind: "first" }
  | { kind: "last" }
  | { kind: "before" | "after"; cursor: Cursor }
  | { kind: "at"; date: string };

/** An entry's place in page order: its time (µs since the epoch) and capture number. */
export interface Cursor {
  micros: string;
  id: string;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}):(\d{2}))?$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ACTION = /^[a-z_]+\.[a-z_]+$/;
const CURSOR = /^(-?\d{1,16})\.(\d{1,19})$/;

/**
 * A real day of the years 0001–9999 (`2024-02-29` yes; `2023-02-29`, `2024-02-31` and `0000-01-01`
 * no): JavaScript's Date.parse rolls impossible days over, PostgreSQL refuses them.
 */
export function isCalendarDate(s: string): boolean {
  if (!DATE.test(s) || s.startsWith("0000")) return false;
  const [y, m, d] = s.split("-").map(Number);
  const date = new Date(0);
  date.setUTCFullYear(y, m - 1, d);
  return date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d;
}

/** `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` with a real day and time, normalised; else "". */
export function localDateTime(s: string): string {
  const m = DATE_TIME.exec(s);
  if (!m || !isCalendarDate(m[1])) return "";
  if (m[2] === undefined) return m[1];
  if (Number(m[2]) > 23 || Number(m[3]) > 59) return "";
  return `${m[1]}T${m[2]}:${m[3]}`;
}

function values(v: unknown): string[] {
  return (Array.isArray(v) ? v : [v]).filter((x): x is string => typeof x === "string");
}

/** Reads the filters from a query string; anything malformed is dropped (never an error). */
export function parseFilters(query: Record<string, unknown>): AuditFilters {
  const text = (v: unknown, max: number) => (values(v)[0] ?? "").trim().slice(0, max);
  const ip = text(query.ip, 45);
  return {
    q: text(query.q, 200),
    actions: [
      ...new Set(
        values(query.action)
          .flatMap((a) => a.split(","))
          .map((a) => a.trim())
          .filter((a) => a.length <= 100 && ACTION.test(a)),
      ),
    ].slice(0, 30),
    actor: text(query.actor, 320),
    incident: UUID.test(text(query.incident, 36)) ? text(query.incident, 36).toLowerCase() : "",
    surface: (SURFACES as readonly string[]).includes(text(query.surface, 10)) ? text(query.surface, 10) : "",
    ip: isIp(ip) ? ip : "",
    range: text(query.range, 4) in RANGES ? text(query.range, 4) : "",
    from: localDateTime(text(query.from, 16)),
    to: localDateTime(text(query.to, 16)),
  };
}

function isIp(s: string): boolean {
  if (/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(s)) return s.split(".").every((p) => Number(p) <= 255);
  return /^[0-9a-f:]+$/i.test(s) && s.includes(":") && s.length >= 2 && (s.match(/::/g) ?? []).length <= 1;
}

export function parsePosition(query: Record<string, unknown>): AuditPosition {
  const one = (v: unknown) => values(v)[0] ?? "";
  for (const kind of ["before", "after"] as const) {
    const m = CURSOR.exec(one(query[kind]));
    if (m) return { kind, cursor: { micros: m[1], id: m[2] } };
  }
  if (one(query.page) === "last") return { kind: "last" };
  const at = one(query.at);
  if (isCalendarDate(at)) return { kind: "at", date: at };
  return { kind: "first" };
}

/** Filters with nothing set. */
export function hasFilters(f: AuditFilters): boolean {
  return Boolean(f.q || f.actions.length || f.actor || f.incident || f.surface || f.ip || f.range || f.from || f.to);
}

/** The URL of this view with some filters changed and at a position (first page unless given). */
export function filterUrl(
  base: string,
  filters: AuditFilters,
  change: Partial<AuditFilters> = {},
  position: AuditPosition = { kind: "first" },
  extra: Record<string, string> = {},
): string {
  const next = { ...filters, ...change };
  const params = new URLSearchParams();
  if (next.q) params.set("q", next.q);
  for (const a of next.actions) params.append("action", a);
  if (next.actor) params.set("actor", next.actor);
  if (next.incident) params.set("incident", next.incident);
  if (next.surface) params.set("surface", next.surface);
  if (next.ip) params.set("ip", next.ip);
  if (next.range) params.set("range", next.range);
  else {
    if (next.from) params.set("from", next.from);
    if (next.to) params.set("to", next.to);
  }
  if (position.kind === "before" || position.kind === "after") {
    params.set(position.kind, `${position.cursor.micros}.${position.cursor.id}`);
  } else if (position.kind === "last") params.set("page", "last");
  else if (position.kind === "at") params.set("at", position.date);
  for (const [k, v] of Object.entries(extra)) params.set(k, v);
  const query = params.toString();
  return query ? `${base}?${query}` : base;
}

/** The filter's time window as instants, resolved in the page's time zone. */
export interface Window {
  from: string | null;
  to: string | null;
  /** Both ends fall on whole UTC hours (so the hourly activity counts the window exactly). */
  hourly: boolean;
  /** Today in the page's zone, and the chart's first and last day. */
  today: string;
  chartFirst: string;
  chartLast: string;
}

/** The calendar day of an instant in a time zone (YYYY-MM-DD). */
function dayIn(zone: string, at: Date): string {
  let format = dayFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-CA", { timeZone: zone, year: "numeric", month: "2-digit", day: "2-digit" });
    dayFormats.set(zone, format);
  }
  return format.format(at);
}
const dayFormats = new Map<string, Intl.DateTimeFormat>();

const addDays = (day: string, n: number) =>
  new Date(Date.parse(`${day}T00:00:00Z`) + n * 24 * HOUR).toISOString().slice(0, 10);

/**
 * The window of a view without From/To (none, or a preset ending now), worked out here: the same
 * answer as the SQL below without its round trip. From/To are local times in the page's zone, and
 * PostgreSQL's zone rules turn those into instants.
 */
function presetWindow(f: AuditFilters, zone: string): Window | null {
  if (!f.range && (f.from || f.to)) return null;
  const now = Date.now();
  const from = f.range ? new Date(now - RANGES[f.range].ms) : null;
  const today = dayIn(zone, new Date(now));
  const oldest = addDays(today, -(CHART_DAYS - 1));
  const fromDay = from ? dayIn(zone, from) : null;
  // String order is date order for YYYY-MM-DD.
  const chartFirst = fromDay === null ? addDays(today, -29) : [fromDay, oldest].sort()[1];
  return {
    from: from ? from.toISOString() : null,
    to: null,
    hourly: from === null || from.getTime() % HOUR === 0,
    today,
    chartFirst,
    chartLast: today,
  };
}

async function resolveWindow(client: pg.ClientBase, f: AuditFilters, zone: string): Promise<Window> {
  const preset = presetWindow(f, zone);
  if (preset) return preset;
  const { rows } = await client.query<{
    from_at: string | null;
    to_at: string | null;
    hourly: boolean;
    today: string;
    chart_first: string;
    chart_last: string;
  }>(
    prepared(
      `with w as (
       select case when $1::text is not null then now() - $1::interval
                   when $2::text is null then null
                   else $2::timestamp at time zone $4 end as from_at,
              case when $1::text is not null then null
                   when $3::text is null then null
                   when length($3) = 10 then ($3::date + 1)::timestamp at time zone $4
                   else ($3::timestamp + interval '1 minute') at time zone $4 end as to_at,
              (now() at time zone $4)::date as today
     ), c as (
       select w.*, least(coalesce((w.to_at - interval '1 microsecond') at time zone $4, w.today::timestamp)::date, w.today) as last_day
       from w
     )
     select to_char(from_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as from_at,
            to_char(to_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as to_at,
            coalesce(date_trunc('hour', from_at, 'UTC') = from_at, true) and coalesce(date_trunc('hour', to_at, 'UTC') = to_at, true) as hourly,
            to_char(today, 'YYYY-MM-DD') as today,
            to_char(greatest(coalesce((from_at at time zone $4)::date, last_day - 29), last_day - ${CHART_DAYS - 1}), 'YYYY-MM-DD') as chart_first,
            to_char(last_day, 'YYYY-MM-DD') as chart_last
     from c`,
      [f.range ? RANGES[f.range].interval : null, f.range ? null : f.from || null, f.range ? null : f.to || null, zone],
    ),
  );
  const r = rows[0];
  return {
    from: r.from_at,
    to: r.to_at,
    hourly: r.hourly,
    today: r.today,
    chartFirst: r.chart_first,
    chartLast: r.chart_last,
  };
}

/** The filter as the SQL functions take it (app_hidden.audit_find / audit_count). */
export function filterJson(f: AuditFilters, window: Pick<Window, "from" | "to">): Record<string, unknown> {
  const json: Record<string, unknown> = {};
  if (f.q) json.pattern = likeContaining(f.q);
  if (f.actions.length > 0) json.actions = f.actions;
  if (f.actor) json.actor = f.actor;
  if (f.incident) json.incident = f.incident;
  if (f.surface) json.surface = f.surface;
  if (f.ip) json.ip = f.ip;
  if (window.from) json.from = window.from;
  if (window.to) json.to = window.to;
  return json;
}

export interface AuditEntry extends EntryRow {
  /** Microseconds since the epoch of occurred_at (with the capture number, the page cursor). */
  micros: string;
  /** The API token's name as the log recorded it when the entry was made, if any. */
  api_token_name: string | null;
}

export interface DayCount {
  day: string;
  n: number;
}

export interface AuditCount {
  /** Exact number, or the cap when there are more. */
  n: number;
  /** "exact", "more" (than n), or "unknown" (not counted within the budget). */
  kind: "exact" | "more" | "unknown";
}

export interface AuditPage {
  entries: AuditEntry[];
  newer: Cursor | null;
  older: Cursor | null;
  /** The position shown is the newest end (live updates apply). */
  atNewest: boolean;
  count: AuditCount;
  /** The chart: per day in the page's zone; `chartFiltered` says whether it reflects every filter. */
  days: DayCount[];
  chartFiltered: boolean;
  actions: string[];
  window: Window;
  /** The largest capture number in the tenant's log when read (for "new entries" since). */
  latestId: string | null;
  /** The latest recorded verification of the tenant's log (daily job or "Verify now"), if any. */
  chain: ChainStatus | null;
  /** When a verification of the log was asked for, while it waits or runs (ISO, UTC). */
  verifying: string | null;
  /** The last verification asked for failed on every attempt. */
  verifyFailed: boolean;
  /**
   * Set when the page stopped reading before it found a page of matches (a filter no index
   * serves, in a large log): how far it read (the time of the last entry read) and in which
   * direction the Older/Newer link goes on.
   */
  scanned: { to: string; direction: "older" | "newer" } | null;
}

export interface ChainStatus {
  checked_at: string;
  valid: boolean;
  entries: string;
  last_seq: string;
  first_invalid_seq: string | null;
  problem: string | null;
}

const PAGE_COLUMNS = `${ENTRY_COLUMNS}, (extract(epoch from e.occurred_at) * 1000000)::bigint::text as micros,
  ${API_TOKEN_NAME} as api_token_name`;

/** A count that gives up after COUNT_BUDGET_MS (in a savepoint, so the transaction goes on). */
async function budgetedCount(client: pg.ClientBase, filter: Record<string, unknown>): Promise<AuditCount> {
  await client.query(`savepoint audit_count; set local statement_timeout = ${COUNT_BUDGET_MS}`);
  try {
    const { rows } = await client.query<{ n: string }>("select app_hidden.audit_count($1, $2) as n", [
      filter,
      COUNT_CAP + 1,
    ]);
    await client.query("release savepoint audit_count; reset statement_timeout");
    return capped(rows[0].n);
  } catch (error) {
    if ((error as { code?: string }).code !== "57014") throw error;
    await client.query("rollback to savepoint audit_count");
    return { n: 0, kind: "unknown" };
  }
}

const capped = (n: string): AuditCount =>
  Number(n) > COUNT_CAP ? { n: COUNT_CAP, kind: "more" } : { n: Number(n), kind: "exact" };

/**
 * Reads one page of the log with its count, chart, the tenant's actions and the latest recorded
 * verification, in three or four statements (each a round trip): the window (only when the filter
 * has From/To), the page's entries, and the rest together; a large log's capped count runs alone,
 * within its time budget.
 */
export async function readAuditLog(
  client: pg.ClientBase,
  filters: AuditFilters,
  position: AuditPosition,
  zone: string,
): Promise<AuditPage> {
  const window = await resolveWindow(client, filters, zone);
  const filter = filterJson(filters, window);
  // The entries: newest first, or oldest first (for "newer" and "last") and then turned around.
  const ascending = position.kind === "after" || position.kind === "last";
  // The position as parameters: one statement (prepared once per connection) for each kind of
  // position, whatever the cursor.
  let cursorSql = "null::timestamptz, null::bigint";
  let cursorParams: unknown[] = [];
  if (position.kind === "before" || position.kind === "after") {
    cursorSql = `timestamptz 'epoch' + $4::bigint * interval '1 microsecond', $5::bigint`;
    cursorParams = [position.cursor.micros, position.cursor.id];
  } else if (position.kind === "at") {
    // The newest entries of that day (in the page's zone) and everything before them.
    cursorSql = `(($4::date + 1)::timestamp at time zone $5), 0::bigint`;
    cursorParams = [position.date, zone];
  }
  const { rows: found } = await client.query<AuditEntry & { scan_end: boolean }>(
    prepared(
      `select ${PAGE_COLUMNS}, k.scan_end
       from app_hidden.audit_find($1, ${cursorSql}, $2, $3) with ordinality as k(at, id, scan_end, n)
       join app_public.audit_log e on e.id = k.id and e.tenant_id = (select app_public.current_tenant_id())
       left join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
       order by k.n`,
      [filter, ascending, PAGE_SIZE + 1, ...cursorParams],
    ),
  );
  // Where audit_find stopped reading without a page of matches (a filter no index serves): the
  // page shows what it found and goes on from there.
  const stop = found.find((r) => r.scan_end);
  const matches = found.filter((r) => !r.scan_end);
  const more = matches.length > PAGE_SIZE;
  const entries: AuditEntry[] = matches.slice(0, PAGE_SIZE);
  if (ascending) entries.reverse();
  const first = entries[0];
  const last = entries[entries.length - 1];
  const key = (e: AuditEntry | undefined): Cursor | null => (e ? { micros: e.micros, id: e.id } : null);
  let newer =
    position.kind === "first" ? null : ascending ? (more ? key(first) : null) : entries.length > 0 ? key(first) : null;
  let older = ascending ? (position.kind === "last" ? null : key(last)) : more ? key(last) : null;
  if (stop && ascending) newer = key(stop);
  if (stop && !ascending) older = key(stop);
  const scanned = stop
    ? { to: stop.occurred_at, direction: ascending ? ("newer" as const) : ("older" as const) }
    : null;

  // Counts: a filter of actions, a user and any window is counted exactly from the kept counts
  // (per hour and action, per day, action and user) and, at the window's edges, the log
  // (GraphQL's totalCount, 000033), one call per action (they are disjoint); without a user and
  // on whole hours, from the hourly counts alone. Any other filter gets a capped count (outright
  // for a small log, else within a budget). The chart is of the actions and window.
  const kept = !filters.q && !filters.incident && !filters.surface && !filters.ip;
  const aggregatable = kept && !filters.actor && window.hourly;
  const actions = filters.actions.length > 0 ? filters.actions : null;
  const countSql = aggregatable
    ? filters.actions.length === 0 && !window.from && !window.to
      ? "f.entries"
      : "app_hidden.audit_activity_total($4, $5, $6)"
    : kept
      ? `(select sum(app_hidden.audit_connection_count(jsonb_strip_nulls(jsonb_build_object(
           'action', a, 'actorLabel', $7::text, 'occurredAfter', $4::timestamptz, 'occurredBefore', $5::timestamptz))))
          from unnest(coalesce($6::text[], array[null::text])) a)`
      : `case when f.entries <= ${UNBUDGETED_COUNT} then app_hidden.audit_count($7, ${COUNT_CAP + 1}) end`;
  // The log's size, latest capture number, actions (for the filter) and latest recorded
  // verification come from one call that checks the caller once (audit_log_facts, migration 000026).
  const { rows } = await client.query<{
    n: string | null;
    days: DayCount[];
    actions: string[];
    latest_id: string | null;
    chain: ChainStatus | null;
    verifying: string | null;
    verify_failed: boolean | null;
  }>(
    prepared(
      `select (${countSql})::text as n,
       (select coalesce(json_agg(json_build_object('day', to_char(d.day, 'YYYY-MM-DD'), 'n', coalesce(c.n, 0)::int) order by d.day), '[]')
        from generate_series($1::date, $2::date, interval '1 day') as d(day)
        left join app_hidden.audit_activity_days(
                 greatest(coalesce($4::timestamptz, '-infinity'), ($1::date)::timestamp at time zone $3),
                 least(coalesce($5::timestamptz, 'infinity'), ($2::date + 1)::timestamp at time zone $3),
                 $6, $3) c(day, n) on c.day = d.day::date) as days,
       f.actions, f.latest_id::text as latest_id, f.chain, ${VERIFICATION_JOB}
       from app_hidden.audit_log_facts() f, app_hidden.audit_verification_job() v`,
      [
        ...[window.chartFirst, window.chartLast, zone, window.from, window.to, actions],
        ...(aggregatable ? [] : kept ? [filters.actor || null] : [filter]),
      ],
    ),
  );
  const extra = rows[0];
  // In a large log, a view that stopped reading short, or a search, cannot be counted within the
  // budget either (measured: the attempt and its cancellation cost ~40 ms): not tried. Nor can a
  // surface without an incident or IP address to read by (every entry of the window is read to
  // check it: the 15 ms ran out on every such page of the 2,000,000-entry bench tenant).
  // A first page that holds every match (nothing older, nothing left unread) is its own count.
  const whole = position.kind === "first" && !more && !stop;
  // Kept counts (the log's size, the hourly and daily activity) are exact whatever their size:
  // shown in full. Counted matches stop at COUNT_CAP.
  const count: AuditCount =
    extra.n !== null
      ? kept
        ? { n: Number(extra.n), kind: "exact" }
        : capped(extra.n)
      : whole
        ? { n: entries.length, kind: "exact" }
        : stop || filters.q || (!filters.incident && !filters.ip)
          ? { n: 0, kind: "unknown" }
          : await budgetedCount(client, filter);
  return {
    entries,
    newer,
    older,
    atNewest: position.kind === "first",
    count,
    days: extra.days,
    chartFiltered: aggregatable,
    actions: extra.actions,
    window,
    latestId: extra.latest_id,
    chain: extra.chain,
    verifying: extra.verifying,
    verifyFailed: extra.verify_failed === true,
    scanned,
  };
}

/** The tenant's verification job: asked for when (ISO, UTC) while it waits or runs, or failed for good. */
const VERIFICATION_JOB = `to_char(v.requested_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as verifying,
       v.failed as verify_failed`;

/** The verification state alone (the status line's polling while a verification runs). */
export async function readChainState(
  client: pg.ClientBase,
): Promise<{ chain: ChainStatus | null; verifying: string | null; verifyFailed: boolean }> {
  const { rows } = await client.query<{
    chain: ChainStatus | null;
    verifying: string | null;
    verify_failed: boolean | null;
  }>(
    `select f.chain, ${VERIFICATION_JOB}
     from app_hidden.audit_log_facts() f, app_hidden.audit_verification_job() v`,
  );
  return { chain: rows[0].chain, verifying: rows[0].verifying, verifyFailed: rows[0].verify_failed === true };
}

/** The view's filter as the SQL functions take it, its window resolved in the page's zone (for the export). */
export async function viewFilter(
  client: pg.ClientBase,
  filters: AuditFilters,
  zone: string,
): Promise<Record<string, unknown>> {
  return filterJson(filters, await resolveWindow(client, filters, zone));
}

/** How many entries matching the filter were recorded after capture number `since` (at most 100). */
export async function countNewEntries(
  client: pg.ClientBase,
  filters: AuditFilters,
  zone: string,
  since: string,
): Promise<number> {
  const window = await resolveWindow(client, filters, zone);
  const { rows } = await client.query<{ n: string }>("select app_hidden.audit_count($1, 100) as n", [
    { ...filterJson(filters, window), after_id: since },
  ]);
  return Number(rows[0].n);
}
