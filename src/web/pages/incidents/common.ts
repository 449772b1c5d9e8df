/**
 * What every incident route shares: the fields and their labels, the helpers the views use, who
 * may do what on the page (only to choose what to show: the database decides), errors worded for
 * people, form helpers, and IncidentPages (where the list is, the data every view gets, loading
 * and showing an incident).
 */
import type Koa from "koa";
import type pg from "pg";
import { fromDatabaseError, UserError } from "../../../http/errors.ts";
import { render } from "../../render.ts";
import { hasFeature, isEditor, isManager, pageOf, renderPage, type Shell } from "../tenant-page.ts";
import { type IncidentRow, loadIncident, readEvidence, readExports, readMilestones, readTimeline } from "./data.ts";

export const STATUSES = ["open", "in_progress", "resolved", "closed"] as const;
export const SEVERITIES = ["low", "medium", "high", "critical"] as const;
export const DAY_CHOICES = [7, 30, 90] as const;
/** The form field names of the incident's editable fields (POST /t/:slug/incidents/:id). */
export const FIELD_KEYS = ["title", "description", "severity", "status", "root_cause", "lessons_learned"] as const;

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
export const helpers = {
  /** The text inside a <time datetime> before attest.js shows it in the viewer's time zone. */
  utc: (isoTime: string) => `${isoTime.slice(0, 16).replace("T", " ")} UTC`,
  bytes: formatBytes,
  label: (kind: string, value: string) => LABELS[kind]?.[value] ?? value,
  relative: (isoTime: string) => relativeTime(isoTime),
  who: (name: string | null, email: string | null) => name || email || "a former member",
};

export interface Can {
  edit: boolean;
  restore: boolean;
  seeExports: boolean;
  exportPlan: boolean;
  export: boolean;
  nis2Plan: boolean;
  timeline: boolean;
}

export function permissions(shell: Shell, incident: IncidentRow): Can {
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

export async function attempt<T>(
  fn: () => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: UserError }> {
  try {
    return { ok: true, value: await fn() };
  } catch (caught) {
    const error = knownError(caught);
    if (!error) throw caught;
    return { ok: false, error };
  }
}

export function refusal(shell: Shell, what: string): UserError {
  return new UserError(
    403,
    `The database refused: as a ${shell.role} of ${shell.tenant.name} you may not ${what}. Ask an owner if you need a different role.`,
    "FORBIDDEN",
  );
}

const NO_INCIDENT = "There is no such incident in this tenant.";
export const notFound = () => new UserError(404, NO_INCIDENT, "NOT_FOUND");
/** The incident itself is missing (not just something in it): answer 404 rather than a message on its page. */
export const missingIncident = (error: UserError) => error.status === 404 && error.message === NO_INCIDENT;
export const isDeleted = () =>
  new UserError(409, "This incident is deleted; restore it before changing it.", "INCIDENT_DELETED");

// ---------------------------------------------------------------------------------------------
// Reading a request, answering with a fragment, and the views of an incident
// ---------------------------------------------------------------------------------------------

export function formOf(ctx: Koa.Context): Record<string, unknown> {
  return (ctx.request.body as Record<string, unknown> | undefined) ?? {};
}

export function field(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (Array.isArray(value) && typeof value[0] === "string") return value[0];
  return undefined;
}

/** Browsers send textarea line breaks as CRLF; store LF so the length limits count what people see. */
export const multiline = (s: string) => s.replace(/\r\n?/g, "\n");

export function uuidParam(ctx: Koa.Context, name: string): string {
  const value = (ctx.params as Record<string, string>)[name];
  if (!value || !UUID.test(value)) throw notFound();
  return value.toLowerCase();
}

/** A fragment for htmx: the partial alone, with the frame's data. */
export function sendFragment(
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

export interface IncidentRouteOptions {
  authPool: pg.Pool;
  maxUploadBytes: number;
  uploadDir?: string;
}

/** What the incident routes have in common: the options, and views of an incident. */
export interface IncidentPages {
  options: IncidentRouteOptions;
  listBase(shell: Shell): string;
  /** The data every incident view needs, plus `extra`. */
  viewOf(shell: Shell, incident: IncidentRow, extra?: Record<string, unknown>): Record<string, unknown>;
  /** Loads an incident in a transaction of its own, or answers 404. */
  incidentOf(ctx: Koa.Context, id: string): Promise<IncidentRow>;
  /** The whole incident page, with an optional section state (error, typed values, message). */
  showIncident(ctx: Koa.Context, id: string, state?: SectionState, status?: number): Promise<void>;
}

export function incidentPages(options: IncidentRouteOptions): IncidentPages {
  const listBase = (shell: Shell) => `/t/${shell.tenant.slug}/incidents`;

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

  const incidentOf = async (ctx: Koa.Context, id: string) => {
    const incident = await pageOf(ctx).tx((c) => loadIncident(c, id));
    if (!incident) throw notFound();
    return incident;
  };

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

  return { options, listBase, viewOf, incidentOf, showIncident };
}
