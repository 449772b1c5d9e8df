/**
 * Export of the Audit Log's current view (/t/:slug/audit/export.csv and …/export.jsonl, with the
 * page's filters in the query string), streamed in constant memory whatever its size, and itself
 * recorded as `audit_log.exported` (format, filters, number of entries).
 *
 * How: one short transaction takes the export's bound (the newest entry now), counts the entries
 * of the view up to it and records the export — committed before the first byte is sent, so an
 * export the client aborts is recorded too, and one that cannot be recorded sends nothing. The
 * rows then come in the page's order (newest first) in batches of EXPORT_BATCH, each read by one
 * short keyset query (app_hidden.audit_find after the previous batch's last entry, entries up to
 * the bound) in its own transaction: no transaction or cursor stays open
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
import { attachmentDisposition } from "../../http/download.ts";
import { UserError } from "../../http/errors.ts";
import { API_TOKEN_NAME } from "./audit-entry.ts";
import { type AuditFilters, parseFilters, viewFilter } from "./audit-query.ts";
import { pageZone } from "./audit-zone.ts";
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

/** The filters as recorded in the export's entry: only those that are set, and the time zone. */
export function recordedFilters(filters: AuditFilters, zone: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(filters)) {
    if (Array.isArray(value) ? value.length > 0 : value) out[key] = value;
  }
  if (filters.from || filters.to) out.tz = zone;
  return out;
}

/** The export's bound and size, recorded in the same short transaction (committed before streaming). */
async function startExport(
  client: pg.ClientBase,
  filters: AuditFilters,
  zone: string,
  format: ExportFormat,
): Promise<{ filter: Record<string, unknown>; entries: number }> {
  // The newest entry now: the export holds the view's entries up to it (later ones are left out).
  const bound = await client.query<{ through: string | null }>(
    "select max(e.id)::text as through from app_public.audit_log e where e.tenant_id = (select app_public.current_tenant_id())",
  );
  const filter = { ...(await viewFilter(client, filters, zone)), through_id: bound.rows[0]?.through ?? "0" };
  const counted = await client.query<{ n: string }>("select app_hidden.audit_count($1, 2147483647)::text as n", [
    filter,
  ]);
  const entries = counted.rows[0].n;
  await client.query("select app_hidden.record_audit_log_export($1, $2, $3)", [
    format,
    JSON.stringify(recordedFilters(filters, zone)),
    entries,
  ]);
  return { filter, entries: Number(entries) };
}

/**
 * One batch: the view's next entries in page order (newest first) after the cursor. The last row
 * may be where audit_find stopped reading (`scan_end`, not an entry of the view): the next batch
 * goes on from there.
 */
async function readBatch(
  client: pg.ClientBase,
  filter: Record<string, unknown>,
  after: { micros: string; id: string } | null,
): Promise<Array<ExportRow & { micros: string; scan_end: boolean }>> {
  const readable = await client.query<{ ok: boolean }>("select app_hidden.audit_log_readable() as ok");
  if (!readable.rows[0]?.ok) throw new Error("the audit log is no longer readable by this session");
  const { rows } = await client.query<ExportRow & { micros: string; scan_end: boolean }>(
    `select k.scan_end, e.id::text as id, l.seq::text as seq, (extract(epoch from e.occurred_at) * 1000000)::bigint::text as micros,
            to_char(e.occurred_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as time,
            e.actor_label as actor, e.api_token_id,
            ${API_TOKEN_NAME} as api_token_name,
            e.action, e.resource_type, e.resource_id, e.resource_label, e.incident_id, e.changes,
            host(e.ip) as ip, e.user_agent, e.request_id, e.surface, encode(l.leaf_hash, 'hex') as leaf_hash
     from app_hidden.audit_find($1,
            case when $2::bigint is null then null else timestamptz 'epoch' + $2::bigint * interval '1 microsecond' end,
            $3::bigint, false, ${EXPORT_BATCH}) with ordinality as k(occurred_at, id, scan_end, n)
     join app_public.audit_log e on e.id = k.id and e.tenant_id = (select app_public.current_tenant_id())
     -- one key lookup per row (LIMIT keeps the planner from joining the tenant's whole tree)
     left join lateral (select l.seq, l.leaf_hash from app_hidden.audit_leaves l
                        where l.tenant_id = e.tenant_id and l.entry_id = e.id limit 1) l on true
     order by k.n`,
    [filter, after?.micros ?? null, after?.id ?? null],
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
  zone: string,
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
  const { filter, entries } = await withContext(pool, context, (client) => startExport(client, filters, zone, format));
  headers();
  ctx.set("X-Export-Entries", String(entries));

  async function* lines() {
    if (format === "csv") {
      // A byte order mark, so that spreadsheet apps read the file as UTF-8.
      yield `\ufeff${stringify([[...EXPORT_COLUMNS]])}`;
    }
    let after: { micros: string; id: string } | null = null;
    for (;;) {
      const cursor: { micros: string; id: string } | null = after;
      const rows: Array<ExportRow & { micros: string; scan_end: boolean }> = await withContext(
        pool,
        context,
        (client) => readBatch(client, filter, cursor),
      );
      if (rows.length === 0) break;
      const found = rows.filter((r) => !r.scan_end);
      if (found.length > 0) yield format === "csv" ? stringify(found.map(csvCells)) : found.map(jsonLine).join("");
      const last = rows[rows.length - 1];
      after = { micros: last.micros, id: last.id };
      if (!last.scan_end && rows.length < EXPORT_BATCH) break;
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
      const zone = await pageZone(ctx, page);
      await sendAuditExport(
        ctx,
        options.authPool,
        page.acting,
        parseFilters(ctx.query),
        zone.name,
        format,
        shell.tenant.slug,
      );
    });
  }
}
