/**
 * The Incidents pages (/t/:slug/incidents): the list (status chips with counts, a title search
 * and a "created within" filter, all in the URL; newest first, 20 per page; deleted incidents on
 * request, to restore them), creating an incident, and the incident page: fields edited in
 * place, soft delete and restore, evidence upload/download/delete, NIS2 reporting and its
 * milestones, evidence pack requests and the incident's own audit timeline.
 * Every form works as a plain POST followed by a redirect (or the page again with the error and
 * what was typed); htmx swaps just the part that changed. The database decides who may do what
 * (RLS, triggers, functions); the role and plan checks here only choose what to show and how to
 * word a refusal.
 */
import type Router from "@koa/router";
import type Koa from "koa";
import type pg from "pg";
import { likeContaining } from "../../db/like.ts";
import { fromDatabaseError, UserError } from "../../http/errors.ts";
import { render } from "../render.ts";
import { receiveEvidence, sendEvidenceFile } from "../routes/evidence.ts";
import {
  hasFeature,
  isEditor,
  isManager,
  pageOf,
  redirectWithNotice,
  renderPage,
  type Shell,
  wantsFragment,
} from "./tenant-page.ts";

export const INCIDENT_PAGE_SIZE = 20;
export const STATUSES = ["open", "in_progress", "resolved", "closed"] as const;
export const SEVERITIES = ["low", "medium", "high", "critical"] as const;
export const DAY_CHOICES = [7, 30, 90] as const;
/** The form field names of the incident's editable fields (POST /t/:slug/incidents/:id). */
export const FIELD_KEYS = ["title", "description", "severity", "status", "root_cause", "lessons_learned"] as const;
/** How many audit entries the incident page shows. */
export const TIMELINE_LIMIT = 100;

export type Status = (typeof STATUSES)[number];
export type FieldKey = (typeof FIELD_KEYS)[number];

interface FieldDef {
  label: string;
  kind: "text" | "textarea" | "select";
  hint?: string;
  empty?: string;
  options?: readonly string[];
}

export const FIELDS: Record<FieldKey, FieldDef> = {
  title: { label: "Title", kind: "text", hint: "required, up to 255 characters" },
  description: {
    label: "Description",
    kind: "textarea",
    hint: "up to 4000 characters",
    empty: "No description yet.",
  },
  severity: { label: "Severity", kind: "select", options: SEVERITIES },
  status: { label: "Status", kind: "select", options: STATUSES },
  root_cause: {
    label: "Root cause",
    kind: "textarea",
    hint: "up to 4000 characters",
    empty: "Not determined yet.",
  },
  lessons_learned: {
    label: "Lessons learned",
    kind: "textarea",
    hint: "up to 4000 characters",
    empty: "Not recorded yet.",
  },
};

const LABELS: Record<string, Record<string, string>> = {
  status: { open: "Open", in_progress: "In progress", resolved: "Resolved", closed: "Closed" },
  severity: { low: "Low", medium: "Medium", high: "High", critical: "Critical" },
  milestone: {
    early_warning: "Early warning",
    full_notification: "Full notification",
    final_report: "Final report",
  },
  milestoneWindow: { early_warning: "24 hours", full_notification: "72 hours", final_report: "30 days" },
  milestoneStatus: { pending: "Pending", completed: "Completed", overdue: "Overdue" },
  export: { queued: "Queued", building: "Building", ready: "Ready", failed: "Failed" },
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const ISO_FORMAT = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
const iso = (column: string) => `to_char(${column} at time zone 'UTC', ${ISO_FORMAT})`;

export function formatBytes(bytes: number): string {
  const units: Array<[string, number]> = [
    ["GB", 1024 ** 3],
    ["MB", 1024 ** 2],
    ["KB", 1024],
  ];
  for (const [unit, size] of units) {
    if (bytes >= size) {
      const n = bytes / size;
      return `${(n < 10 ? n.toFixed(1) : n.toFixed(0)).replace(/\.0$/, "")} ${unit}`;
    }
  }
  return `${bytes} B`;
}

/** "in 5 hours" / "3 days ago", from now. */
export function relativeTime(isoTime: string, now = Date.now()): string {
  const ms = Date.parse(isoTime) - now;
  const abs = Math.abs(ms);
  const units: Array<[string, number]> = [
    ["day", 86_400_000],
    ["hour", 3_600_000],
    ["minute", 60_000],
  ];
  for (const [unit, size] of units) {
    if (abs >= size) {
      const n = Math.round(abs / size);
      const span = `${n} ${unit}${n === 1 ? "" : "s"}`;
      return ms >= 0 ? `in ${span}` : `${span} ago`;
    }
  }
  return ms >= 0 ? "in under a minute" : "just now";
}

/** Small helpers the views use (as `it.h`). */
const helpers = {
  /** The text inside a <time datetime> before attest.js shows it in the viewer's time zone. */
  utc: (isoTime: string) => `${isoTime.slice(0, 16).replace("T", " ")} UTC`,
  bytes: formatBytes,
  label: (kind: string, value: string) => LABELS[kind]?.[value] ?? value,
  relative: (isoTime: string) => relativeTime(isoTime),
  who: (name: string | null, email: string | null) => name || email || "a former member",
};

// ---------------------------------------------------------------------------------------------
// The list
// ---------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------
// One incident and its sections
// ---------------------------------------------------------------------------------------------

export interface IncidentRow {
  id: string;
  title: string;
  severity: string;
  status: string;
  description: string;
  root_cause: string | null;
  lessons_learned: string | null;
  nis2_enabled: boolean;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
  created_by_name: string | null;
  created_by_email: string | null;
  deleted_by_name: string | null;
  deleted_by_email: string | null;
  overdue_milestones: number;
}

export async function loadIncident(client: pg.ClientBase, id: string): Promise<IncidentRow | undefined> {
  const { rows } = await client.query<IncidentRow>(
    `select i.id, i.title, i.severity, i.status, i.description, i.root_cause, i.lessons_learned, i.nis2_enabled,
            ${iso("i.created_at")} as created_at, ${iso("i.updated_at")} as updated_at,
            ${iso("i.deleted_at")} as deleted_at,
            cu.name as created_by_name, cu.email as created_by_email,
            du.name as deleted_by_name, du.email as deleted_by_email,
            (select count(*)::int from app_public.nis2_milestones m
             where m.incident_id = i.id and m.completed_at is null and m.due_at < now()) as overdue_milestones
     from app_public.incidents i
     left join app_public.users cu on cu.id = i.created_by
     left join app_public.users du on du.id = i.deleted_by
     where i.id = $1`,
    [id],
  );
  return rows[0];
}

export interface EvidenceRow {
  id: string;
  filename: string;
  content_type: string;
  size_bytes: number;
  sha256: string;
  created_at: string;
  uploaded_by_name: string | null;
  uploaded_by_email: string | null;
}

export async function readEvidence(client: pg.ClientBase, incidentId: string): Promise<EvidenceRow[]> {
  const { rows } = await client.query<EvidenceRow>(
    `select e.id, e.filename, e.content_type, e.size_bytes::float8 as size_bytes, encode(e.sha256, 'hex') as sha256,
            ${iso("e.created_at")} as created_at, u.name as uploaded_by_name, u.email as uploaded_by_email
     from app_public.evidence e
     left join app_public.users u on u.id = e.uploaded_by
     where e.incident_id = $1
     order by e.created_at desc, e.filename`,
    [incidentId],
  );
  return rows;
}

export interface MilestoneRow {
  id: string;
  kind: string;
  due_at: string;
  completed_at: string | null;
  notes: string | null;
  status: "pending" | "completed" | "overdue";
  completed_by_name: string | null;
  completed_by_email: string | null;
}

export async function readMilestones(client: pg.ClientBase, incidentId: string): Promise<MilestoneRow[]> {
  const { rows } = await client.query<MilestoneRow>(
    `select m.id, m.kind, ${iso("m.due_at")} as due_at, ${iso("m.completed_at")} as completed_at, m.notes,
            app_public.nis2_milestones_status(m) as status,
            u.name as completed_by_name, u.email as completed_by_email
     from app_public.nis2_milestones m
     left join app_public.users u on u.id = m.completed_by
     where m.incident_id = $1
     order by m.due_at`,
    [incidentId],
  );
  return rows;
}

export interface ExportRow {
  id: string;
  status: "queued" | "building" | "ready" | "failed";
  progress: number;
  error: string | null;
  created_at: string;
  finished_at: string | null;
  requested_by_name: string | null;
  requested_by_email: string | null;
}

export async function readExports(client: pg.ClientBase, incidentId: string): Promise<ExportRow[]> {
  const { rows } = await client.query<ExportRow>(
    `select x.id, x.status, x.progress, x.error, ${iso("x.created_at")} as created_at,
            ${iso("x.finished_at")} as finished_at, u.name as requested_by_name, u.email as requested_by_email
     from app_public.exports x
     left join app_public.users u on u.id = x.requested_by
     where x.incident_id = $1
     order by x.created_at desc
     limit 10`,
    [incidentId],
  );
  return rows;
}

export interface TimelineEntry {
  /** Position in the log, or null while pending. */
  seq: string | null;
  occurred_at: string;
  actor_label: string;
  action: string;
  resource_type: string;
  resource_label: string | null;
  changes: Record<string, { old?: unknown; new?: unknown }>;
  total: number;
}

/** The incident's audit entries, newest first (owner/admin with auditLog only: others get an error or nothing). */
export async function readTimeline(client: pg.ClientBase, incidentId: string): Promise<TimelineEntry[]> {
  const { rows } = await client.query<TimelineEntry>(
    `select app_public.audit_log_seq(e) as seq, ${iso("e.occurred_at")} as occurred_at, e.actor_label, e.action,
            e.resource_type, e.resource_label, e.changes, (count(*) over ())::int as total
     from app_public.incidents i
     cross join lateral app_public.incidents_audit_trail(i) e
     where i.id = $1
     order by e.id desc
     limit ${TIMELINE_LIMIT}`,
    [incidentId],
  );
  return rows;
}

interface Can {
  edit: boolean;
  restore: boolean;
  seeExports: boolean;
  exportPlan: boolean;
  export: boolean;
  nis2Plan: boolean;
  timeline: boolean;
}

function permissions(shell: Shell, incident: IncidentRow): Can {
  const deleted = incident.deleted_at !== null;
  return {
    edit: isEditor(shell) && !deleted,
    restore: isEditor(shell) && deleted,
    seeExports: isManager(shell),
    exportPlan: hasFeature(shell, "evidencePacks"),
    export: isManager(shell) && hasFeature(shell, "evidencePacks") && !deleted,
    nis2Plan: hasFeature(shell, "nis2Timeline"),
    timeline: isManager(shell) && hasFeature(shell, "auditLog"),
  };
}

/** What a section shows after a post: a message, or a form again with what was typed and the error. */
export interface SectionState {
  notice?: { section: string; kind: "notice" | "error"; text: string };
  form?: { section: string; field?: string; id?: string; values?: Record<string, string>; error?: string };
  saved?: string;
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/** A database or user error as a message for the user; undefined for anything unexpected. */
function knownError(error: unknown): UserError | undefined {
  if (error instanceof UserError) return error;
  return fromDatabaseError(error);
}

async function attempt<T>(fn: () => Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: UserError }> {
  try {
    return { ok: true, value: await fn() };
  } catch (caught) {
    const error = knownError(caught);
    if (!error) throw caught;
    return { ok: false, error };
  }
}

function refusal(shell: Shell, what: string): UserError {
  return new UserError(
    403,
    `The database refused: as a ${shell.role} of ${shell.tenant.name} you may not ${what}. Ask an owner if you need a different role.`,
    "FORBIDDEN",
  );
}

const NO_INCIDENT = "There is no such incident in this tenant.";
const notFound = () => new UserError(404, NO_INCIDENT, "NOT_FOUND");
/** The incident itself is missing (not just something in it): answer 404 rather than a message on its page. */
const missingIncident = (error: UserError) => error.status === 404 && error.message === NO_INCIDENT;
const isDeleted = () =>
  new UserError(409, "This incident is deleted; restore it before changing it.", "INCIDENT_DELETED");

// ---------------------------------------------------------------------------------------------
// Routes
// ---------------------------------------------------------------------------------------------

function formOf(ctx: Koa.Context): Record<string, unknown> {
  return (ctx.request.body as Record<string, unknown> | undefined) ?? {};
}

function field(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Array.isArray(value) && typeof value[0] === "string") return value[0];
  return undefined;
}

/** Browsers send textarea line breaks as CRLF; store LF so the length limits count what people see. */
const multiline = (s: string) => s.replace(/\r\n?/g, "\n");

function uuidParam(ctx: Koa.Context, name: string): string {
  const value = (ctx.params as Record<string, string>)[name];
  if (!value || !UUID.test(value)) throw notFound();
  return value.toLowerCase();
}

/** A fragment for htmx: the partial alone, with the frame's data. */
function sendFragment(
  ctx: Koa.Context,
  view: string,
  data: Record<string, unknown>,
  options: { status?: number; changed?: boolean } = {},
) {
  const page = pageOf(ctx);
  ctx.status = options.status ?? 200;
  ctx.type = "html";
  ctx.set("Vary", "HX-Request, HX-Request-Type");
  ctx.set("Cache-Control", "no-store");
  // Other parts of the page (summary, timeline) listen for this and reload themselves.
  if (options.changed) ctx.set("HX-Trigger", "incidentChanged");
  ctx.body = render(view, { ...data, shell: page.shell, oob: true });
}

export function incidentRoutes(
  router: Router,
  options: { authPool: pg.Pool; maxUploadBytes: number; uploadDir?: string },
): void {
  const listBase = (shell: Shell) => `/t/${shell.tenant.slug}/incidents`;

  /** The data every incident view needs, plus `extra`. */
  const viewOf = (shell: Shell, incident: IncidentRow, extra: Record<string, unknown> = {}) => {
    const base = listBase(shell);
    return {
      incident,
      base,
      url: `${base}/${incident.id}`,
      can: permissions(shell, incident),
      fields: FIELDS,
      fieldKeys: FIELD_KEYS,
      h: helpers,
      maxUploadBytes: options.maxUploadBytes,
      maxUpload: formatBytes(options.maxUploadBytes),
      ...extra,
    };
  };

  /** Loads an incident in a transaction of its own, or answers 404. */
  const incidentOf = async (ctx: Koa.Context, id: string) => {
    const incident = await pageOf(ctx).tx((c) => loadIncident(c, id));
    if (!incident) throw notFound();
    return incident;
  };

  /** The whole incident page, with an optional section state (error, typed values, message). */
  const showIncident = async (ctx: Koa.Context, id: string, state: SectionState = {}, status = 200) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const data = await page.tx(async (c) => {
      const incident = await loadIncident(c, id);
      if (!incident) return undefined;
      const can = permissions(shell, incident);
      return {
        incident,
        evidence: await readEvidence(c, id),
        milestones: await readMilestones(c, id),
        exports: can.seeExports ? await readExports(c, id) : [],
        timeline: can.timeline ? await readTimeline(c, id) : [],
      };
    });
    if (!data) throw notFound();
    renderPage(ctx, "pages/incident", viewOf(shell, data.incident, { ...data, ...state }), {
      title: data.incident.title,
      nav: "incidents",
      status,
    });
  };

  // -- The list -------------------------------------------------------------------------------

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

  // -- One incident -----------------------------------------------------------------------------

  router.get("/incidents/:id", async (ctx) => {
    const id = uuidParam(ctx, "id");
    const edit = field(ctx.query.edit);
    const editing = edit && (FIELD_KEYS as readonly string[]).includes(edit) ? edit : undefined;
    await showIncident(ctx, id, editing ? { form: { section: "field", field: editing } } : {});
  });

  // Edits any of the FIELD_KEYS that the form sends (usually one).
  router.post("/incidents/:id", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const id = uuidParam(ctx, "id");
    const body = formOf(ctx);
    const posted = FIELD_KEYS.filter((k) => field(body[k]) !== undefined);
    if (posted.length === 0) {
      throw new UserError(400, `Nothing to save: send one of ${FIELD_KEYS.join(", ")}.`, "BAD_USER_INPUT");
    }
    const typed: Record<string, string> = Object.fromEntries(posted.map((k) => [k, field(body[k]) ?? ""]));
    const stored = (k: FieldKey): string | null => {
      const raw = typed[k];
      if (k === "title") return raw.trim();
      if (k === "description") return multiline(raw);
      if (k === "root_cause" || k === "lessons_learned") return raw.trim() === "" ? null : multiline(raw);
      return raw;
    };
    const result = await attempt(() =>
      page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (incident.deleted_at) throw isDeleted();
        const changed = posted.filter((k) => (incident[k] ?? null) !== stored(k));
        if (changed.length > 0) {
          // Column names come from FIELD_KEYS only.
          const sets = changed.map((k, i) => `${k} = $${i + 2}`).join(", ");
          const updated = await c.query(
            `update app_public.incidents set ${sets} where id = $1 and deleted_at is null returning id`,
            [id, ...changed.map(stored)],
          );
          if (updated.rowCount === 0) throw refusal(shell, "change incidents");
        }
        return changed;
      }),
    );
    const key = posted[0];
    const url = `${listBase(shell)}/${id}`;
    if (!result.ok) {
      if (result.error.status === 404) throw result.error;
      const form = { section: "field", field: key, values: typed, error: result.error.message };
      if (wantsFragment(ctx)) {
        const incident = await incidentOf(ctx, id);
        return sendFragment(ctx, "partials/incident-field", viewOf(shell, incident, { key, form }), {
          status: result.error.status,
        });
      }
      return showIncident(ctx, id, { form }, result.error.status);
    }
    const changed = result.value;
    if (wantsFragment(ctx)) {
      const incident = await incidentOf(ctx, id);
      return sendFragment(
        ctx,
        "partials/incident-field",
        viewOf(shell, incident, { key, saved: changed.length > 0 ? key : "unchanged" }),
        { changed: changed.length > 0 },
      );
    }
    const names = changed.map((k) => FIELDS[k].label.toLowerCase()).join(", ");
    redirectWithNotice(ctx, `${url}#field-${key}`, changed.length > 0 ? `Saved the ${names}.` : "Nothing changed.");
  });

  // One field, shown or (?edit=1) as its form: what the Edit and Cancel links load with htmx.
  router.get("/incidents/:id/fields/:field", async (ctx) => {
    const { shell } = pageOf(ctx);
    const id = uuidParam(ctx, "id");
    const key = ctx.params.field as FieldKey;
    if (!(FIELD_KEYS as readonly string[]).includes(key)) throw new UserError(404, "No such field.", "NOT_FOUND");
    const edit = field(ctx.query.edit) === "1";
    const url = `${listBase(shell)}/${id}`;
    if (!wantsFragment(ctx)) return ctx.redirect(`${url}${edit ? `?edit=${key}` : ""}#field-${key}`);
    const incident = await incidentOf(ctx, id);
    sendFragment(
      ctx,
      "partials/incident-field",
      viewOf(shell, incident, { key, form: edit ? { section: "field", field: key } : undefined }),
    );
  });

  // Parts of the page that reload themselves (after htmx changes elsewhere, or polling).
  const sectionRoute = (
    name: string,
    view: string,
    anchor: string,
    load: (c: pg.PoolClient, incident: IncidentRow, can: Can) => Promise<Record<string, unknown>>,
  ) => {
    router.get(`/incidents/:id/${name}`, async (ctx) => {
      const page = pageOf(ctx);
      const id = uuidParam(ctx, "id");
      if (!wantsFragment(ctx)) return ctx.redirect(`${listBase(page.shell)}/${id}#${anchor}`);
      const data = await page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) return undefined;
        return { incident, ...(await load(c, incident, permissions(page.shell, incident))) };
      });
      if (!data) throw notFound();
      sendFragment(ctx, view, viewOf(page.shell, data.incident, data));
    });
  };
  sectionRoute("summary", "partials/incident-summary", "main", async () => ({}));
  sectionRoute("timeline", "partials/incident-timeline", "timeline", async (c, incident, can) => ({
    timeline: can.timeline ? await readTimeline(c, incident.id) : [],
  }));
  sectionRoute("evidence", "partials/incident-evidence", "evidence", async (c, incident) => ({
    evidence: await readEvidence(c, incident.id),
  }));
  sectionRoute("exports", "partials/incident-exports", "exports", async (c, incident, can) => ({
    exports: can.seeExports ? await readExports(c, incident.id) : [],
  }));

  // Soft delete and restore (plain forms: they lead to another page): the same steps, reversed.
  const softDelete = (deleting: boolean) => async (ctx: Koa.Context) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const id = uuidParam(ctx, "id");
    const url = `${listBase(shell)}/${id}`;
    const result = await attempt(() =>
      page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (deleting && incident.deleted_at)
          throw new UserError(409, "This incident is already deleted.", "INCIDENT_DELETED");
        if (!deleting && !incident.deleted_at) throw new UserError(409, "This incident is not deleted.", "NOT_DELETED");
        try {
          await c.query(`select app_public.${deleting ? "delete_incident" : "restore_incident"}($1)`, [id]);
        } catch (error) {
          // The incident is there and in the right state: only the row policy can have said no.
          if ((error as { code?: string }).code === "P0002") {
            throw refusal(shell, deleting ? "delete incidents" : "restore incidents");
          }
          throw error;
        }
        return incident;
      }),
    );
    if (!result.ok) {
      if (result.error.status === 404) throw result.error;
      return redirectWithNotice(ctx, url, result.error.message, "error");
    }
    if (deleting) {
      redirectWithNotice(
        ctx,
        listBase(shell),
        `Deleted “${result.value.title}”. It is kept under Deleted incidents, where it can be restored.`,
      );
    } else {
      redirectWithNotice(ctx, url, `Restored “${result.value.title}”.`);
    }
  };
  router.post("/incidents/:id/delete", softDelete(true));
  router.post("/incidents/:id/restore", softDelete(false));

  // -- Evidence ---------------------------------------------------------------------------------

  // Multipart upload (field name free; the form uses "files"). CSRF token in ?_csrf= or X-CSRF-Token.
  router.post("/incidents/:id/evidence", async (ctx) => {
    const page = pageOf(ctx);
    const id = uuidParam(ctx, "id");
    const url = `${listBase(page.shell)}/${id}`;
    const json = ctx.accepts(["html", "json"]) === "json";
    const limits = { maxBytes: options.maxUploadBytes, dir: options.uploadDir };
    const result = await attempt(() =>
      receiveEvidence(page.tx, ctx.req, ctx.req.headers, id, limits, async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (incident.deleted_at) throw isDeleted();
      }),
    );
    if (!result.ok) {
      // JSON callers (attest.js) get the server's JSON error; a plain form goes back with a message.
      if (json || result.error.status === 404) throw result.error;
      return redirectWithNotice(ctx, `${url}#evidence`, result.error.message, "error");
    }
    if (json) {
      ctx.status = 201;
      ctx.body = { evidence: result.value };
      return;
    }
    const names = result.value.map((f) => `“${f.filename}”`).join(", ");
    redirectWithNotice(
      ctx,
      `${url}#evidence`,
      `Uploaded ${result.value.length === 1 ? "" : `${result.value.length} files: `}${names}.`,
    );
  });

  router.get("/incidents/:id/evidence/:evidenceId/download", async (ctx) => {
    const page = pageOf(ctx);
    const id = uuidParam(ctx, "id");
    const evidenceId = uuidParam(ctx, "evidenceId");
    await sendEvidenceFile(ctx, options.authPool, page.acting, evidenceId, id);
  });

  router.post("/incidents/:id/evidence/:evidenceId/delete", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const id = uuidParam(ctx, "id");
    const evidenceId = uuidParam(ctx, "evidenceId");
    const url = `${listBase(shell)}/${id}`;
    const result = await attempt(() =>
      page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (incident.deleted_at) throw isDeleted();
        const file = await c.query<{ filename: string }>(
          "select filename from app_public.evidence where id = $1 and incident_id = $2",
          [evidenceId, id],
        );
        if (file.rowCount === 0) {
          throw new UserError(404, "That evidence file is not attached to this incident (any more).", "NOT_FOUND");
        }
        const deleted = await c.query("delete from app_public.evidence where id = $1 and incident_id = $2", [
          evidenceId,
          id,
        ]);
        if (deleted.rowCount === 0) throw refusal(shell, "delete evidence");
        return file.rows[0].filename;
      }),
    );
    const state: SectionState = result.ok
      ? { notice: { section: "evidence", kind: "notice", text: `Deleted “${result.value}”.` } }
      : { notice: { section: "evidence", kind: "error", text: result.error.message } };
    if (wantsFragment(ctx)) {
      const data = await page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        return incident && { incident, evidence: await readEvidence(c, id) };
      });
      if (!data) throw notFound();
      return sendFragment(ctx, "partials/incident-evidence", viewOf(shell, data.incident, { ...data, ...state }), {
        status: result.ok ? 200 : result.error.status,
        changed: result.ok,
      });
    }
    if (!result.ok && missingIncident(result.error)) throw result.error;
    redirectWithNotice(ctx, `${url}#evidence`, state.notice?.text ?? "", result.ok ? "notice" : "error");
  });

  // -- NIS2 ---------------------------------------------------------------------------------------

  /** Answers a NIS2 post: the section for htmx, else a redirect (or the page with the form's error). */
  const answerNis2 = async (ctx: Koa.Context, id: string, state: SectionState, ok: boolean, status: number) => {
    const page = pageOf(ctx);
    const url = `${listBase(page.shell)}/${id}`;
    if (wantsFragment(ctx)) {
      const data = await page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        return incident && { incident, milestones: await readMilestones(c, id) };
      });
      if (!data) throw notFound();
      return sendFragment(ctx, "partials/incident-nis2", viewOf(page.shell, data.incident, { ...data, ...state }), {
        status,
        changed: ok,
      });
    }
    if (!ok && state.form) return showIncident(ctx, id, state, status);
    redirectWithNotice(ctx, `${url}#nis2`, state.notice?.text ?? "", ok ? "notice" : "error");
  };

  // Turns NIS2 reporting on or off: enabled=true|false.
  router.post("/incidents/:id/nis2", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const id = uuidParam(ctx, "id");
    const enabled = ["true", "1", "on"].includes(field(formOf(ctx).enabled) ?? "");
    const result = await attempt(() =>
      page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (incident.deleted_at) throw isDeleted();
        if (incident.nis2_enabled === enabled) return false;
        const updated = await c.query(
          "update app_public.incidents set nis2_enabled = $2 where id = $1 and deleted_at is null returning id",
          [id, enabled],
        );
        if (updated.rowCount === 0) throw refusal(shell, "change incidents");
        return true;
      }),
    );
    if (!result.ok && result.error.status === 404) throw result.error;
    const text = result.ok
      ? enabled
        ? "NIS2 reporting is on: the early warning, full notification and final report deadlines are below."
        : "NIS2 reporting is off. Its milestones are kept and come back if you turn it on again."
      : result.error.message;
    await answerNis2(
      ctx,
      id,
      { notice: { section: "nis2", kind: result.ok ? "notice" : "error", text } },
      result.ok,
      result.ok ? 200 : result.error.status,
    );
  });

  // Completes a milestone, with optional notes.
  router.post("/incidents/:id/milestones/:milestoneId/complete", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const id = uuidParam(ctx, "id");
    const milestoneId = uuidParam(ctx, "milestoneId");
    const notes = multiline(field(formOf(ctx).notes) ?? "");
    const result = await attempt(() =>
      page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (incident.deleted_at) throw isDeleted();
        const found = await c.query<{ kind: string; completed_at: Date | null }>(
          "select kind, completed_at from app_public.nis2_milestones where id = $1 and incident_id = $2",
          [milestoneId, id],
        );
        if (found.rowCount === 0) throw new UserError(404, "This incident has no such milestone.", "NOT_FOUND");
        const label = helpers.label("milestone", found.rows[0].kind);
        if (found.rows[0].completed_at) throw new UserError(409, `The ${label.toLowerCase()} is already completed.`);
        try {
          await c.query("select app_public.complete_milestone($1, $2)", [milestoneId, notes.trim() ? notes : null]);
        } catch (error) {
          if ((error as { code?: string }).code === "P0002") throw refusal(shell, "complete milestones");
          throw error;
        }
        return label;
      }),
    );
    if (!result.ok && missingIncident(result.error)) throw result.error;
    if (result.ok) {
      return answerNis2(
        ctx,
        id,
        { notice: { section: "nis2", kind: "notice", text: `${result.value} marked complete.` } },
        true,
        200,
      );
    }
    await answerNis2(
      ctx,
      id,
      { form: { section: "nis2", id: milestoneId, values: { notes }, error: result.error.message } },
      false,
      result.error.status,
    );
  });

  // -- Evidence packs -----------------------------------------------------------------------------

  router.post("/incidents/:id/exports", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const id = uuidParam(ctx, "id");
    const url = `${listBase(shell)}/${id}`;
    const result = await attempt(() =>
      page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (incident.deleted_at) throw isDeleted();
        await c.query("insert into app_public.exports (incident_id) values ($1)", [id]);
      }),
    );
    let error = result.ok ? undefined : result.error;
    if (error?.status === 404) throw error;
    if (error?.code === "FORBIDDEN") {
      // The row policy wants an owner/admin on a plan with evidencePacks: say which one is missing.
      error = !hasFeature(shell, "evidencePacks")
        ? new UserError(
            402,
            `Evidence packs are not included in the ${shell.tenant.plan} plan. Upgrade to a plan with evidence packs to request one.`,
            "PLAN_REQUIRED",
          )
        : refusal(shell, "request evidence packs (owners and admins can)");
    }
    const state: SectionState = {
      notice: error
        ? { section: "exports", kind: "error", text: error.message }
        : {
            section: "exports",
            kind: "notice",
            text: "Evidence pack requested. It is queued and will be built in the background.",
          },
    };
    if (wantsFragment(ctx)) {
      const data = await page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        return incident && { incident, exports: isManager(shell) ? await readExports(c, id) : [] };
      });
      if (!data) throw notFound();
      return sendFragment(ctx, "partials/incident-exports", viewOf(shell, data.incident, { ...data, ...state }), {
        status: error?.status ?? 200,
        changed: !error,
      });
    }
    redirectWithNotice(ctx, `${url}#exports`, state.notice?.text ?? "", error ? "error" : "notice");
  });
}
