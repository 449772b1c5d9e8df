/**
 * The incident list (/t/:slug/incidents): status chips with counts, a title search and a "created
 * within" filter, all in the URL; newest first, 20 per page; deleted incidents on request, to
 * restore them. And creating an incident.
 */
import type Router from "@koa/router";
import type Koa from "koa";
import type pg from "pg";
import { likeContaining } from "../../../db/like.ts";
import { pageOf, redirectWithNotice, renderPage, wantsFragment } from "../tenant-page.ts";
import {
  attempt,
  DAY_CHOICES,
  field,
  formOf,
  helpers,
  type IncidentPages,
  multiline,
  refusal,
  SEVERITIES,
  STATUSES,
  type Status,
  sendFragment,
} from "./common.ts";
import { iso } from "./data.ts";

export const INCIDENT_PAGE_SIZE = 20;

export interface IncidentFilters {
  q: string;
  status: Status | "";
  /** Created within this many days; 0 means any time. */
  days: number;
  deleted: boolean;
  page: number;
}

export function parseIncidentFilters(query: Record<string, unknown>): IncidentFilters {
  const text = (v: unknown, max: number) => (typeof v === "string" ? v.trim().slice(0, max) : "");
  const status = text(query.status, 20);
  const days = Number.parseInt(text(query.days, 4), 10);
  const page = Number.parseInt(text(query.page, 6), 10);
  return {
    q: text(query.q, 200),
    status: (STATUSES as readonly string[]).includes(status) ? (status as Status) : "",
    days: (DAY_CHOICES as readonly number[]).includes(days) ? days : 0,
    deleted: ["1", "true", "on"].includes(text(query.deleted, 5)),
    page: Number.isFinite(page) && page > 0 ? page : 1,
  };
}

/** The URL of this list view with some filters changed (the page resets unless given). */
export function incidentListUrl(base: string, filters: IncidentFilters, change: Partial<IncidentFilters> = {}): string {
  const next = { ...filters, page: 1, ...change };
  const params = new URLSearchParams();
  if (next.q) params.set("q", next.q);
  if (next.status) params.set("status", next.status);
  if (next.days) params.set("days", String(next.days));
  if (next.deleted) params.set("deleted", "1");
  if (next.page > 1) params.set("page", String(next.page));
  const query = params.toString();
  return query ? `${base}?${query}` : base;
}

export interface IncidentListRow {
  id: string;
  title: string;
  severity: string;
  status: string;
  nis2_enabled: boolean;
  created_at: string;
  deleted_at: string | null;
  created_by_name: string | null;
  created_by_email: string | null;
  evidence_count: number;
  overdue_milestones: number;
}

function listWhere(filters: IncidentFilters, options: { deleted: boolean; status: boolean }) {
  const parts = [options.deleted ? "i.deleted_at is not null" : "i.deleted_at is null"];
  const params: unknown[] = [];
  if (filters.q) {
    params.push(likeContaining(filters.q));
    parts.push(`i.title ilike $${params.length}`);
  }
  if (filters.days) {
    params.push(filters.days);
    parts.push(`i.created_at >= now() - make_interval(days => $${params.length}::int)`);
  }
  if (options.status && filters.status) {
    params.push(filters.status);
    parts.push(`i.status = $${params.length}`);
  }
  return { sql: `where ${parts.join(" and ")}`, params };
}

/** One page of incidents (as the signed-in user: RLS applies), with the counts the chips show. */
export async function readIncidentList(client: pg.ClientBase, filters: IncidentFilters) {
  const counted = listWhere(filters, { deleted: filters.deleted, status: false });
  const byStatus = await client.query<{ status: string; n: number }>(
    `select i.status, count(*)::int as n from app_public.incidents i ${counted.sql} group by i.status`,
    counted.params,
  );
  const counts: Record<string, number> = { all: 0, open: 0, in_progress: 0, resolved: 0, closed: 0 };
  for (const row of byStatus.rows) {
    counts[row.status] = row.n;
    counts.all += row.n;
  }
  const other = listWhere(filters, { deleted: !filters.deleted, status: false });
  const otherCount = await client.query<{ n: number }>(
    `select count(*)::int as n from app_public.incidents i ${other.sql}`,
    other.params,
  );
  const total = filters.status ? counts[filters.status] : counts.all;
  const pages = Math.max(1, Math.ceil(total / INCIDENT_PAGE_SIZE));
  const page = Math.min(filters.page, pages);
  const where = listWhere(filters, { deleted: filters.deleted, status: true });
  const incidents = await client.query<IncidentListRow>(
    `select i.id, i.title, i.severity, i.status, i.nis2_enabled,
            ${iso("i.created_at")} as created_at, ${iso("i.deleted_at")} as deleted_at,
            u.name as created_by_name, u.email as created_by_email,
            (select count(*)::int from app_public.evidence e where e.incident_id = i.id) as evidence_count,
            (select count(*)::int from app_public.nis2_milestones m
             where m.incident_id = i.id and m.completed_at is null and m.due_at < now()) as overdue_milestones
     from app_public.incidents i
     left join app_public.users u on u.id = i.created_by
     ${where.sql}
     order by ${filters.deleted ? "i.deleted_at desc," : ""} i.created_at desc, i.id desc
     limit ${INCIDENT_PAGE_SIZE} offset ${(page - 1) * INCIDENT_PAGE_SIZE}`,
    where.params,
  );
  return { incidents: incidents.rows, counts, otherCount: otherCount.rows[0].n, total, page, pages };
}

export function listRoutes(router: Router, pages: IncidentPages): void {
  const { listBase } = pages;

  const listData = (ctx: Koa.Context, filters: IncidentFilters, list: Awaited<ReturnType<typeof readIncidentList>>) => {
    const base = listBase(pageOf(ctx).shell);
    return {
      ...list,
      filters,
      base,
      statuses: STATUSES,
      severities: SEVERITIES,
      dayChoices: DAY_CHOICES,
      h: helpers,
      url: (change: Partial<IncidentFilters>) => incidentListUrl(base, filters, change),
      clearUrl: base,
      oob: wantsFragment(ctx),
      firstShown: list.total === 0 ? 0 : (list.page - 1) * INCIDENT_PAGE_SIZE + 1,
      lastShown: Math.min(list.page * INCIDENT_PAGE_SIZE, list.total),
    };
  };

  router.get("/incidents", async (ctx) => {
    const page = pageOf(ctx);
    const filters = parseIncidentFilters(ctx.query);
    const list = await page.tx((c) => readIncidentList(c, filters));
    renderPage(ctx, "pages/incidents", listData(ctx, filters, list), {
      title: filters.deleted ? "Deleted incidents" : "Incidents",
      nav: "incidents",
      fragment: "partials/incident-results",
    });
  });

  // Create: title, severity, description.
  router.post("/incidents", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const body = formOf(ctx);
    const values = {
      title: field(body.title) ?? "",
      severity: field(body.severity) ?? "medium",
      description: multiline(field(body.description) ?? ""),
    };
    const result = await attempt(() =>
      page.tx(async (c) => {
        const { rows } = await c.query<{ id: string }>(
          "insert into app_public.incidents (title, severity, description) values ($1, $2, $3) returning id",
          [values.title.trim(), values.severity, values.description],
        );
        return rows[0].id;
      }),
    );
    if (result.ok) {
      return redirectWithNotice(
        ctx,
        `${listBase(shell)}/${result.value}`,
        `Incident “${values.title.trim()}” created.`,
      );
    }
    const error = result.error.code === "FORBIDDEN" ? refusal(shell, "create incidents") : result.error;
    const createForm = { values, error: error.message };
    if (wantsFragment(ctx)) {
      return sendFragment(
        ctx,
        "partials/incident-create",
        { base: listBase(shell), severities: SEVERITIES, h: helpers, createForm },
        { status: error.status },
      );
    }
    const filters = parseIncidentFilters({});
    const list = await page.tx((c) => readIncidentList(c, filters));
    renderPage(
      ctx,
      "pages/incidents",
      { ...listData(ctx, filters, list), createForm },
      { title: "Incidents", nav: "incidents", status: error.status },
    );
  });
}
