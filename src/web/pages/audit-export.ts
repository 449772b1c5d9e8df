/**
 * Export of the Audit Log's current view (/t/:slug/audit/export.csv and …/export.jsonl, with the
 * page's filters in the query string), streamed in constant memory whatever its size, and itself
 * recorded as `audit_log.exported` (format, filters, number of entries).
 *
 * How: one short transaction takes the export's bound (the newest entry now), counts the entries
 * of the view up to it and records the export — committed before the first byte is sent, so an
 * export the client aborts is recorded too, and one that cannot be recorded sends nothing. The
 * rows then come newest first in batches of EXPORT_BATCH, each read by one short keyset query in
 * its own transaction (`id < last id of the previous batch`): no transaction or cursor stays open
 * while the client reads, and a batch is read only when the client has taken the previous one.
 *
 * CSV cells that a spreadsheet would run as a formula (starting with `=`, `+`, `-`, `@`, a tab or
 * a carriage return) get a leading `'`; JSON Lines values are exact.
 */
import { Readable } from "node:stream";
import type Router from "@koa/router";
import { stringify } from "csv-stringify/sync";
import type Koa from "koa";
import type pg from "pg";
import { type ActingContext, withContext } from "../../db/context.ts";
import { attachmentDisposition } from "../download.ts";
import { UserError } from "../errors.ts";
import { type AuditFilters, parseFilters, whereClause } from "./audit-log.ts";
import { hasFeature, isManager, pageOf } from "./tenant-page.ts";

export const EXPORT_BATCH = 1000;

export type ExportFormat = "csv" | "jsonl";

/** The columns of an export, in order (CSV header = these names; JSON Lines keys = these names). */
export const EXPORT_COLUMNS = [
  "seq",
  "entry_id",
  "time",
  "actor",
  "api_token_id",
  "api_token_name",
  "action",
  "resource_type",
  "resource_id",
  "resource_label",
  "incident_id",
  "changes",
  "ip",
  "user_agent",
  "request_id",
  "surface",
  "leaf_hash",
  "sealed",
] as const;

interface ExportRow {
  id: string;
  seq: string | null;
  time: string;
  actor: string;
  api_token_id: string | null;
  api_token_name: string | null;
  action: string;
  resource_type: string;
  resource_id: string | null;
  resource_label: string | null;
  incident_id: string | null;
  changes: unknown;
  ip: string | null;
  user_agent: string | null;
  request_id: string | null;
  surface: string;
  leaf_hash: string | null;
}

/** A cell a spreadsheet app would read as a formula gets a leading quote (OWASP "CSV injection"). */
export function csvSafe(value: string): string {
  return /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
}

function csvCells(row: ExportRow): string[] {
  const cells = [
    row.seq ?? "",
    row.id,
    row.time,
    row.actor,
    row.api_token_id ?? "",
    row.api_token_name ?? "",
    row.action,
    row.resource_type,
    row.resource_id ?? "",
    row.resource_label ?? "",
    row.incident_id ?? "",
    JSON.stringify(row.changes ?? {}),
    row.ip ?? "",
    row.user_agent ?? "",
    row.request_id ?? "",
    row.surface,
    row.leaf_hash ?? "",
    row.seq === null ? "false" : "true",
  ];
  return cells.map(csvSafe);
}

function jsonLine(row: ExportRow): string {
  return `${JSON.stringify({
    seq: row.seq === null ? null : Number(row.seq),
    entry_id: Number(row.id),
    time: row.time,
    actor: row.actor,
    api_token_id: row.api_token_id,
    api_token_name: row.api_token_name,
    action: row.action,
    resource_type: row.resource_type,
    resource_id: row.resource_id,
    resource_label: row.resource_label,
    incident_id: row.incident_id,
    changes: row.changes ?? {},
    ip: row.ip,
    user_agent: row.user_agent,
    request_id: row.request_id,
    surface: row.surface,
    leaf_hash: row.leaf_hash,
    sealed: row.seq !== null,
  })}\n`;
}

/** The filters as recorded in the export's entry: only those that are set. */
export function recordedFilters(filters: AuditFilters): Record<string, string> {
  const out: Record<string, string> = {};
  if (filters.q) out.q = filters.q;
  if (filters.action) out.action = filters.action;
  if (filters.from) out.from = filters.from;
  if (filters.to) out.to = filters.to;
  return out;
}

/** The export's bound and size, recorded in the same short transaction (committed before streaming). */
async function startExport(client: pg.ClientBase, filters: AuditFilters, format: ExportFormat) {
  const where = whereClause(filters);
  // The newest entry now: the export holds the view's entries up to it (later ones are left out).
  const bound = await client.query<{ through: string | null }>(
    "select max(e.id)::text as through from app_public.audit_log e",
  );
  const through = bound.rows[0]?.through ?? "0";
  const p = where.params.length + 1;
  const counted = await client.query<{ n: string }>(
    `select count(*)::text as n from app_public.audit_log e
     ${where.sql ? `${where.sql} and` : "where"} e.id <= $${p}`,
    [...where.params, through],
  );
  const entries = counted.rows[0].n;
  await client.query("select app_hidden.record_audit_log_export($1, $2, $3)", [
    format,
    JSON.stringify(recordedFilters(filters)),
    entries,
  ]);
  return { through, entries: Number(entries) };
}

/** One batch: the view's entries with a capture number below `before`, newest first. */
async function readBatch(client: pg.ClientBase, filters: AuditFilters, before: string): Promise<ExportRow[]> {
  const readable = await client.query<{ ok: boolean }>("select app_hidden.audit_log_readable() as ok");
  if (!readable.rows[0]?.ok) throw new Error("the audit log is no longer readable by this session");
  const where = whereClause(filters);
  const p = where.params.length + 1;
  const { rows } = await client.query<ExportRow>(
    `select e.id::text as id, l.seq::text as seq,
            to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as time,
            e.actor_label as actor, e.api_token_id,
            case when e.api_token_id is not null then app_public.audit_log_api_token_name(e) end as api_token_name,
            e.action, e.resource_type, e.resource_id, e.resource_label, e.incident_id, e.changes,
            host(e.ip) as ip, e.user_agent, e.request_id, e.surface, encode(l.leaf_hash, 'hex') as leaf_hash
     from app_public.audit_log e
     -- one key lookup per row (LIMIT keeps the planner from joining the tenant's whole tree)
     left join lateral (select l.seq, l.leaf_hash from app_hidden.audit_leaves l
                        where l.tenant_id = e.tenant_id and l.entry_id = e.id limit 1) l on true
     ${where.sql ? `${where.sql} and` : "where"} e.id < $${p}
     order by e.id desc
     limit ${EXPORT_BATCH}`,
    [...where.params, before],
  );
  return rows;
}

/**
 * Answers `ctx` with the export of the view `filters` as `context` may read it (owner/admin with
 * the audit log; RLS decides). HEAD answers the headers and records nothing.
 */
export async function sendAuditExport(
  ctx: Koa.Context,
  pool: pg.Pool,
  context: ActingContext,
  filters: AuditFilters,
  format: ExportFormat,
  slug: string,
): Promise<void> {
  const stamp = new Date()
    .toISOString()
    .replace(/[:]/g, "-")
    .replace(/\.\d+Z$/, "Z");
  const headers = () => {
    ctx.status = 200;
    ctx.set("Content-Type", format === "csv" ? "text/csv; charset=utf-8" : "application/x-ndjson; charset=utf-8");
    ctx.set("Content-Disposition", attachmentDisposition(`audit-log-${slug}-${stamp}.${format}`));
    ctx.set("X-Content-Type-Options", "nosniff");
    ctx.set("Content-Security-Policy", "sandbox; default-src 'none'");
    ctx.set("Cache-Control", "private, no-store");
  };
  if (ctx.method === "HEAD") return headers(); // nothing read, nothing recorded

  // Recorded (and committed) before the first byte; a refusal here is an ordinary error page.
  const { through, entries } = await withContext(pool, context, (client) => startExport(client, filters, format));
  headers();
  ctx.set("X-Export-Entries", String(entries));

  async function* lines() {
    if (format === "csv") {
      // A byte order mark, so that spreadsheet apps read the file as UTF-8.
      yield `\ufeff${stringify([[...EXPORT_COLUMNS]])}`;
    }
    let before = String(BigInt(through) + 1n);
    for (;;) {
      const rows = await withContext(pool, context, (client) => readBatch(client, filters, before));
      if (rows.length === 0) break;
      yield format === "csv" ? stringify(rows.map(csvCells)) : rows.map(jsonLine).join("");
      before = rows[rows.length - 1].id;
      if (rows.length < EXPORT_BATCH) break;
    }
  }
  ctx.body = Readable.from(lines(), { objectMode: false, highWaterMark: 1 });
}

export function auditExportRoutes(router: Router, options: { authPool: pg.Pool }): void {
  for (const format of ["csv", "jsonl"] as const) {
    router.get(`/audit/export.${format}`, async (ctx) => {
      const page = pageOf(ctx);
      const { shell } = page;
      if (!hasFeature(shell, "auditLog")) {
        throw new UserError(403, "The audit log is not in this tenant's plan.", "PLAN_REQUIRED");
      }
      if (!isManager(shell)) {
        throw new UserError(403, "Only owners and admins can export the audit log.", "FORBIDDEN");
      }
      await sendAuditExport(ctx, options.authPool, page.acting, parseFilters(ctx.query), format, shell.tenant.slug);
    });
  }
}
