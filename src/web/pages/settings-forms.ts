/**
 * Small helpers shared by the settings pages (webhooks, members, API tokens): reading form
 * fields, recognising ids, the pages shown instead of a settings page (upgrade prompt, 403), and
 * turning a refusal by the database into a message shown next to the form that caused it.
 */
import type Koa from "koa";
import { fromDatabaseError, UserError } from "../../http/errors.ts";
import { type Feature, hasFeature, isManager, pageOf, renderPage } from "./tenant-page.ts";

/** "an admin", "an owner", "a member", "a viewer". */
export function aRole(role: string): string {
  return `${/^[aeiou]/i.test(role) ? "an" : "a"} ${role}`;
}

/** A timestamptz column as ISO 8601 UTC text (`2025-01-31T09:15:00Z`) for `<time datetime>`. */
export const isoUtc = (column: string) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUuid(value: unknown): value is string {
  return typeof value === "string" && UUID.test(value);
}

/** A text field of the posted form, trimmed and cut to `max` characters ("" when absent). */
export function formText(ctx: Koa.Context, name: string, max: number): string {
  const value = (ctx.request.body as Record<string, unknown> | undefined)?.[name];
  const text = Array.isArray(value) ? value[0] : value;
  return typeof text === "string" ? text.trim().slice(0, max) : "";
}

/** A route parameter that must be a uuid; anything else is a 404 like an unknown id. */
export function idParam(ctx: Koa.Context, name: string, what: string): string {
  const value = (ctx.params as Record<string, string | undefined>)[name];
  if (!isUuid(value)) throw new UserError(404, `There is no such ${what} in this tenant.`, "NOT_FOUND");
  return value.toLowerCase();
}

/**
 * Renders the page a user sees instead of a settings page, and returns true, when the plan lacks
 * `feature` (upgrade prompt) or when `managersOnly` and the user is neither owner nor admin (403).
 */
export function renderedInstead(
  ctx: Koa.Context,
  options: { title: string; nav: string; feature?: { key: Feature; name: string }; managersOnly?: string },
): boolean {
  const { shell } = pageOf(ctx);
  if (options.feature && !hasFeature(shell, options.feature.key)) {
    renderPage(
      ctx,
      "pages/upgrade",
      { feature: options.feature.name },
      { title: options.title, nav: options.nav, status: 403 },
    );
    return true;
  }
  if (options.managersOnly && !isManager(shell)) {
    renderPage(
      ctx,
      "pages/error",
      {
        heading: `Only owners and admins can ${options.managersOnly}`,
        message: `You are ${aRole(shell.role)} of ${shell.tenant.name}. Ask an owner or admin of ${shell.tenant.name} if you need a change here.`,
      },
      { title: options.title, nav: options.nav, status: 403 },
    );
    return true;
  }
  return false;
}

export interface FormProblem {
  status: number;
  message: string;
  /** The CHECK constraint that refused the input, when there was one (tells which field). */
  constraint?: string;
}

/**
 * What to show next to a form when the database refused its input (bad values, unknown user,
 * duplicates, the last-owner rule); undefined for anything else, which the caller rethrows so the
 * error page answers it (forbidden, plan, timeouts, bugs).
 */
export function formProblem(error: unknown): FormProblem | undefined {
  const e = error as { code?: string; message?: string; constraint?: string; routine?: string };
  // The database's own rules raise 22023 with a sentence meant for the user (e.g. "The expiry
  // must be in the future"); the generic mapping would hide it behind "does not exist". Only
  // their messages (raise exception), never PostgreSQL's own.
  if (e.code === "22023" && e.message && e.routine === "exec_stmt_raise") return { status: 400, message: e.message };
  const mapped = fromDatabaseError(error);
  if (!mapped || ![400, 404, 409].includes(mapped.status)) return undefined;
  return { status: mapped.status, message: mapped.message, constraint: e.constraint };
}
