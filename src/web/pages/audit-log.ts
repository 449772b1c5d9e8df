/**
 * The Audit Log page (/t/:slug/audit): entries newest first, 25 at a time, by keyset position
 * (newest, newer, older, oldest, a date), with filters (search, actions, user, incident, surface,
 * IP, time window) all in the URL, so a view can be bookmarked, reloaded and shared, and works
 * without JavaScript; counts, a per-day chart, the viewer's time zone, and "new entries" polling.
 * What is read and how lives in audit-query.ts, the page's time zone in audit-zone.ts; this module
 * owns the routes.
 * Who may see it is decided by row-level security and the log's functions; the role and plan
 * checks here only pick the page to show instead (403 or upgrade prompt).
 */
import type Router from "@koa/router";
import type Koa from "koa";
import type pg from "pg";
import { UserError } from "../../http/errors.ts";
import { breakable, render } from "../render.ts";
import { entryHref } from "./audit-entry.ts";
import {
  type AuditEntry,
  type AuditFilters,
  type AuditPosition,
  COUNT_CAP,
  countNewEntries,
  type DayCount,
  filterUrl,
  hasFilters,
  PAGE_SIZE,
  parseFilters,
  parsePosition,
  RANGES,
  readAuditLog,
  readChainState,
  SURFACES,
} from "./audit-query.ts";
import { pageZone, zonedTime, zoneParams, zoneQuery } from "./audit-zone.ts";
import {
  hasFeature,
  isManager,
  type PageState,
  pageOf,
  redirectWithNotice,
  renderPage,
  wantsFragment,
} from "./tenant-page.ts";

export type { AuditEntry, AuditFilters, ChainStatus, DayCount } from "./audit-query.ts";
export { CHART_DAYS, filterUrl, isCalendarDate, PAGE_SIZE, parseFilters } from "./audit-query.ts";

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

export function auditLogRoutes(router: Router): void {
  router.post("/audit/verify", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const base = `/t/${shell.tenant.slug}/audit`;
    if (!hasFeature(shell, "auditLog") || !isManager(shell)) {
      throw new UserError(403, "Only owners and admins of a plan with the audit log can verify it.", "FORBIDDEN");
    }
    // Verifying recomputes every entry (about 45 s for 2,000,000 on 2 cores): the worker does it
    // and records the result, which this page shows when it is done.
    await page.tx((c) => c.query("select app_public.request_audit_verification()"));
    redirectWithNotice(
      ctx,
      base,
      "Verification started: every entry is recomputed and checked against its leaf, the tree and its signed checkpoints. The result appears above the log when it is done (a few seconds per 100,000 entries).",
      "notice",
    );
  });

  // The status line alone: polled (htmx) while a verification waits or runs, until its result is recorded.
  router.get("/audit/chain", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const base = `/t/${shell.tenant.slug}/audit`;
    if (!hasFeature(shell, "auditLog") || !isManager(shell)) {
      throw new UserError(403, "Only owners and admins of a plan with the audit log can read it.", "FORBIDDEN");
    }
    if (!wantsFragment(ctx)) return ctx.redirect(base); // opened as a page: the page it belongs to
    const zone = await pageZone(ctx, page);
    const state = await page.tx((c) => readChainState(c));
    ctx.type = "html";
    ctx.set("Cache-Control", "no-store");
    ctx.body = render("partials/audit-chain", {
      ...state,
      base,
      shell,
      timeTag: (iso: string) => zonedTime(iso, zone.name),
    });
  });

  /** The page's gate: the upgrade prompt or a 403 page when the viewer may not read the log. */
  function denied(ctx: Koa.Context, page: PageState, base: string): boolean {
    const { shell } = page;
    if (!hasFeature(shell, "auditLog")) {
      renderPage(
        ctx,
        "pages/upgrade",
        { feature: "Audit Log", base },
        { title: "Audit Log", nav: "audit", status: 403 },
      );
      return true;
    }
    if (!isManager(shell)) {
      renderPage(
        ctx,
        "pages/error",
        {
          heading: "Only owners and admins can see the audit log",
          message: `You are a ${shell.role} of ${shell.tenant.name}. Ask an owner or admin if you need to review its activity.`,
        },
        { title: "Audit Log", nav: "audit", status: 403 },
      );
      return true;
    }
    return false;
  }

  router.get("/audit", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const base = `/t/${shell.tenant.slug}/audit`;
    if (denied(ctx, page, base)) return;
    const filters = parseFilters(ctx.query);
    const position = parsePosition(ctx.query);
    const zone = await pageZone(ctx, page);
    // The entries, and the incident the view is narrowed to (its current title, named where the
    // filters are shown), in one transaction.
    const { log, incident } = await page.tx(async (c) => ({
      log: await readAuditLog(c, filters, position, zone.name),
      incident: filters.incident ? await incidentNamed(c, filters.incident) : null,
    }));
    const zoneParam = zoneParams(zone);
    const at = (p: AuditPosition) => filterUrl(base, filters, {}, p, zoneParam);
    renderPage(
      ctx,
      "pages/audit",
      {
        ...log,
        incident: incident && { ...incident, href: `/t/${shell.tenant.slug}/incidents/${filters.incident}` },
        filters,
        position,
        base,
        zone,
        ranges: RANGES,
        surfaces: SURFACES,
        filtered: hasFilters(filters),
        countCap: COUNT_CAP,
        pageSize: PAGE_SIZE,
        chart: chartBars(log.days),
        timeTag: (iso: string) => zonedTime(iso, zone.name),
        breakable,
        // Each row's details are fetched when it is first opened (the list carries only the rows).
        detailUrl: (e: AuditEntry) => `${base}/e/${e.id}/detail${zoneQuery(zone)}`,
        entryHref: (e: AuditEntry) => `${entryHref(shell.tenant.slug, e)}${zoneQuery(zone)}`,
        links: {
          first: log.atNewest ? null : at({ kind: "first" }),
          newer: log.newer ? at({ kind: "after", cursor: log.newer }) : null,
          older: log.older ? at({ kind: "before", cursor: log.older }) : null,
          last: log.older ? at({ kind: "last" }) : null,
          updates:
            log.atNewest && log.latestId
              ? filterUrl(`${base}/updates`, filters, {}, { kind: "first" }, { ...zoneParam, since: log.latestId })
              : null,
          utc: filterUrl(base, filters, {}, position, { tz: "UTC" }),
          local: filterUrl(base, filters, {}, position),
        },
        url: (change: Partial<AuditFilters>) => filterUrl(base, filters, change, { kind: "first" }, zoneParam),
        exportUrl: (format: "csv" | "jsonl") =>
          filterUrl(`${base}/export.${format}`, filters, {}, { kind: "first" }, { tz: zone.name }),
        clearUrl: `${base}${zoneQuery(zone)}`,
      },
      { title: "Audit Log", nav: "audit", fragment: "partials/audit-results" },
    );
  });

  // Live updates: how many entries matching the view were recorded since it was shown.
  router.get("/audit/updates", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const base = `/t/${shell.tenant.slug}/audit`;
    if (!hasFeature(shell, "auditLog") || !isManager(shell)) {
      throw new UserError(403, "Only owners and admins of a plan with the audit log can read it.", "FORBIDDEN");
    }
    const since = typeof ctx.query.since === "string" && /^\d{1,19}$/.test(ctx.query.since) ? ctx.query.since : null;
    if (!since) throw new UserError(400, "The 'since' parameter must be an entry number.", "BAD_REQUEST");
    const filters = parseFilters(ctx.query);
    const zone = await pageZone(ctx, page);
    const n = await page.tx((c) => countNewEntries(c, filters, zone.name, since));
    ctx.type = "html";
    ctx.set("Cache-Control", "no-store");
    const zoneParam = zoneParams(zone);
    const reload = filterUrl(base, filters, {}, { kind: "first" }, zoneParam);
    ctx.body =
      n === 0
        ? ""
        : `<a class="new-entries" href="${escapeHtml(reload)}">${n >= 100 ? "100+" : n} new ${n === 1 ? "entry" : "entries"} — show</a>`;
  });
}

/**
 * An incident's current title (as the viewer may read it: row-level security applies), whether it
 * was deleted, or a null title when there is no such incident in the tenant.
 */
async function incidentNamed(client: pg.ClientBase, id: string): Promise<{ title: string | null; deleted: boolean }> {
  const { rows } = await client.query<{ title: string; deleted: boolean }>(
    "select title, deleted_at is not null as deleted from app_public.incidents where id = $1",
    [id],
  );
  return rows[0] ?? { title: null, deleted: false };
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
