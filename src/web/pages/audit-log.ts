/**
 * The Audit Log page (/t/:slug/audit): entries newest first, 25 per page, one search box over
 * action, user and resource, an action picker and a date range — all in the URL, so a view can
 * be bookmarked, reloaded and shared, and works without JavaScript. Rows expand to their
 * details; a small chart shows activity per day for the current filter.
 * Who may see it is decided by row-level security; the role and plan checks here only pick the
 * page to show instead (403 or upgrade prompt).
 */
import type Router from "@koa/router";
import type pg from "pg";
import { UserError } from "../errors.ts";
import { hasFeature, isManager, pageOf, redirectWithNotice, renderPage } from "./tenant-page.ts";

export const PAGE_SIZE = 25;
const SEARCH_EXPRESSION = "(e.action || ' ' || e.actor_label || ' ' || coalesce(e.resource_label, ''))";

export interface AuditFilters {
  q: string;
  action: string;
  from: string;
  to: string;
  page: number;
}

const DATE = /^\d{4}-\d{2}-\d{2}$/;

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

/** The chart shows at most this many days: the last ones of the filtered range, never later than today. */
export const CHART_DAYS = 92;

export function parseFilters(query: Record<string, unknown>): AuditFilters {
  const text = (v: unknown, max: number) => (typeof v === "string" ? v.trim().slice(0, max) : "");
  const date = (v: unknown) => {
    const s = text(v, 10);
    return isCalendarDate(s) ? s : "";
  };
  const page = Number.parseInt(text(query.page, 6), 10);
  return {
    q: text(query.q, 200),
    action: text(query.action, 100),
    from: date(query.from),
    to: date(query.to),
    page: Number.isFinite(page) && page > 0 ? page : 1,
  };
}

/** The URL of this view with some filters changed (page resets unless given). */
export function filterUrl(base: string, filters: AuditFilters, change: Partial<AuditFilters> = {}): string {
  const next = { ...filters, page: 1, ...change };
  const params = new URLSearchParams();
  if (next.q) params.set("q", next.q);
  if (next.action) params.set("action", next.action);
  if (next.from) params.set("from", next.from);
  if (next.to) params.set("to", next.to);
  if (next.page > 1) params.set("page", String(next.page));
  const query = params.toString();
  return query ? `${base}?${query}` : base;
}

export function whereClause(filters: AuditFilters): { sql: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  if (filters.q) {
    params.push(`%${filters.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    parts.push(`${SEARCH_EXPRESSION} ilike $${params.length}`);
  }
  if (filters.action) {
    params.push(filters.action);
    parts.push(`e.action = $${params.length}`);
  }
  if (filters.from) {
    params.push(filters.from);
    parts.push(`e.occurred_at >= $${params.length}::date`);
  }
  if (filters.to) {
    params.push(filters.to);
    parts.push(`e.occurred_at < $${params.length}::date + 1`);
  }
  return { sql: parts.length > 0 ? `where ${parts.join(" and ")}` : "", params };
}

export interface AuditEntry {
  /** Position in the tenant's log, or null while the entry is pending (not sealed yet). */
  seq: string | null;
  occurred_at: string;
  actor_label: string;
  action: string;
  resource_type: string;
  resource_label: string | null;
  incident_id: string | null;
  changes: Record<string, { old?: unknown; new?: unknown }>;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  surface: string;
  db_role: string;
  leaf_hash: string | null;
  /** The API token the entry was made with (its name as the log recorded it then), if any. */
  api_token_id: string | null;
  api_token_name: string | null;
}

export interface DayCount {
  day: string;
  n: number;
}

/** Reads one page of the log (as the signed-in user: RLS applies), with totals and a per-day series. */
export async function readAuditLog(client: pg.ClientBase, filters: AuditFilters) {
  const where = whereClause(filters);
  const total = await client.query<{ n: number }>(
    `select count(*)::int as n from app_public.audit_log e ${where.sql}`,
    where.params,
  );
  const pages = Math.max(1, Math.ceil(total.rows[0].n / PAGE_SIZE));
  const page = Math.min(filters.page, pages);
  const entries = await client.query<AuditEntry>(
    `select to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as occurred_at,
            e.actor_label, e.action, e.resource_type, e.resource_label, e.incident_id, e.changes,
            e.request_id, host(e.ip) as ip, e.user_agent, e.surface, e.db_role,
            l.seq, encode(l.leaf_hash, 'hex') as leaf_hash, e.api_token_id,
            case when e.api_token_id is not null then app_public.audit_log_api_token_name(e) end as api_token_name
     from app_public.audit_log e
     left join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
     ${where.sql}
     order by e.id desc
     limit ${PAGE_SIZE} offset ${(page - 1) * PAGE_SIZE}`,
    where.params,
  );
  // The chart's days: the filter's range cut to at most CHART_DAYS days, ending no later than
  // today (a range up to 9999-12-31 must not make millions of days).
  const range = `(select least(coalesce($${where.params.length + 2}::date, today), today) as last,
                         $${where.params.length + 1}::date as first
                  from (select (now() at time zone 'UTC')::date as today) t) r`;
  const days = await client.query<DayCount>(
    `select to_char(d.day, 'YYYY-MM-DD') as day, coalesce(c.n, 0)::int as n
     from ${range}
     cross join lateral generate_series(
       greatest(coalesce(r.first, r.last - 29), r.last - ${CHART_DAYS - 1}),
       r.last,
       interval '1 day') as d(day)
     left join (select (e.occurred_at at time zone 'UTC')::date as day, count(*) as n
                from app_public.audit_log e ${where.sql}
                group by 1) c on c.day = d.day::date
     order by d.day`,
    [...where.params, filters.from || null, filters.to || null],
  );
  const actions = await client.query<{ action: string }>(
    // A skip scan over the (tenant_id, action) index: one index probe per distinct action,
    // instead of reading every entry of the tenant on each page view.
    `with recursive actions(action) as (
       (select e.action from app_public.audit_log e order by e.action using ~<~ limit 1)
       union all
       select (select e.action from app_public.audit_log e where e.action ~>~ a.action order by e.action using ~<~ limit 1)
       from actions a where a.action is not null
     )
     select action from actions where action is not null`,
  );
  return {
    total: total.rows[0].n,
    page,
    pages,
    entries: entries.rows,
    days: days.rows,
    actions: actions.rows.map((r) => r.action),
  };
}

/** A bar chart of entries per day as SVG markup data (the view draws it). */
export function chartBars(days: DayCount[], width = 600, height = 80) {
  const max = Math.max(1, ...days.map((d) => d.n));
  const step = width / Math.max(days.length, 1);
  return {
    width,
    height,
    max,
    bars: days.map((d, i) => {
      const h = d.n === 0 ? 0 : Math.max(2, Math.round((d.n / max) * (height - 4)));
      return {
        x: Math.round(i * step * 10) / 10,
        y: height - h,
        w: Math.max(1, Math.round((step - 1) * 10) / 10),
        h,
        day: d.day,
        n: d.n,
      };
    }),
  };
}

export interface ChainStatus {
  checked_at: string;
  valid: boolean;
  entries: string;
  last_seq: string;
  first_invalid_seq: string | null;
  problem: string | null;
}

/** The latest recorded verification of the tenant's chain (daily job or "Verify now"), if any. */
async function readChainStatus(client: pg.ClientBase): Promise<ChainStatus | null> {
  const { rows } = await client.query<ChainStatus>(
    `select to_char(checked_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') as checked_at, valid, entries,
            last_seq, first_invalid_seq, problem
     from app_public.current_chain_verification()`,
  );
  return rows[0] ?? null;
}

export function auditLogRoutes(router: Router): void {
  router.post("/audit/verify", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const base = `/t/${shell.tenant.slug}/audit`;
    if (!hasFeature(shell, "auditLog") || !isManager(shell)) {
      throw new UserError(403, "Only owners and admins of a plan with the audit log can verify it.", "FORBIDDEN");
    }
    const { rows } = await page.tx((c) =>
      c.query<{
        valid: boolean;
        entries: string;
        last_seq: string;
        first_invalid_seq: string | null;
        problem: string | null;
      }>("select valid, entries, last_seq, first_invalid_seq, problem from app_public.verify_current_audit_chain()"),
    );
    const result = rows[0];
    redirectWithNotice(
      ctx,
      base,
      result.valid
        ? `The audit log is intact: all ${result.last_seq} sealed entries match their leaves, the tree and its signed checkpoints.`
        : `The audit log is DAMAGED${result.first_invalid_seq ? ` at position ${result.first_invalid_seq}` : ""}: ${result.problem}`,
      result.valid ? "notice" : "error",
    );
  });

  router.get("/audit", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const base = `/t/${shell.tenant.slug}/audit`;
    if (!hasFeature(shell, "auditLog")) {
      return renderPage(
        ctx,
        "pages/upgrade",
        { feature: "Audit Log", base },
        { title: "Audit Log", nav: "audit", status: 403 },
      );
    }
    if (!isManager(shell)) {
      return renderPage(
        ctx,
        "pages/error",
        {
          heading: "Only owners and admins can see the audit log",
          message: `You are a ${shell.role} of ${shell.tenant.name}. Ask an owner or admin if you need to review its activity.`,
        },
        { title: "Audit Log", nav: "audit", status: 403 },
      );
    }
    const filters = parseFilters(ctx.query);
    const [log, chain] = await page.tx(
      async (c) => [await readAuditLog(c, filters), await readChainStatus(c)] as const,
    );
    renderPage(
      ctx,
      "pages/audit",
      {
        ...log,
        chain,
        filters,
        base,
        chart: chartBars(log.days),
        pageUrl: (n: number) => filterUrl(base, filters, { page: n }),
        exportUrl: (format: "csv" | "jsonl") => filterUrl(`${base}/export.${format}`, filters),
        clearUrl: base,
        firstShown: log.total === 0 ? 0 : (log.page - 1) * PAGE_SIZE + 1,
        lastShown: Math.min(log.page * PAGE_SIZE, log.total),
      },
      { title: "Audit Log", nav: "audit", fragment: "partials/audit-results" },
    );
  });
}
