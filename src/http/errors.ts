/**
 * Errors a person can act on: an HTTP status and a message meant for the user. Anything else
 * that escapes a route is logged and answered with a generic 500 that quotes the request id.
 */
export class UserError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, message: string, code = "BAD_REQUEST") {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** What each CHECK constraint means, in words a user can act on. */
const CONSTRAINT_MESSAGES: Record<string, string> = {
  incidents_title_check: "The title must be 1 to 255 characters and not blank.",
  incidents_severity_check: "The severity must be low, medium, high or critical.",
  incidents_status_check: "The status must be open, in_progress, resolved or closed.",
  incidents_description_check: "The description may be at most 4000 characters.",
  incidents_root_cause_check: "The root cause may be at most 4000 characters.",
  incidents_lessons_learned_check: "The lessons learned may be at most 4000 characters.",
  evidence_filename_check: "The filename must be 1 to 255 characters, without slashes or control characters.",
  evidence_content_type_check: "The content type may be at most 255 characters.",
  nis2_milestones_notes_check: "Milestone notes may be at most 4000 characters.",
  memberships_role_check: "The role must be owner, admin, member or viewer.",
  api_tokens_name_check: "The token name must be 1 to 100 characters.",
  webhooks_url_check: "The webhook URL must start with http:// or https:// and be at most 2000 characters.",
  webhooks_description_check: "The webhook description may be at most 500 characters.",
  webhooks_actions_check: "The webhook actions may not contain empty entries.",
  tenants_slug_check: "The tenant slug must be lower-case letters, digits and dashes.",
  tenants_name_check: "The tenant name must be 1 to 200 characters.",
  users_email_check: "That is not a valid email address.",
};

/** Error codes of a database that cannot be reached or is shutting down (node-postgres and PostgreSQL). */
const UNAVAILABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "EPIPE",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
  "40001", // serialization_failure: trying again helps
  "40P01", // deadlock_detected: trying again helps
]);
const UNAVAILABLE_MESSAGES =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error|Cannot use a pool after calling end|Client was closed)/i;

export const DATABASE_UNAVAILABLE =
  "The database is not reachable right now. Please try again in a moment; if it keeps happening, tell your administrator.";

/** Whether an error means the database could not be reached (or went away), not that the request was wrong. */
export function isDatabaseUnavailable(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | null;
  if (!e || typeof e !== "object") return false;
  if (e.code && (UNAVAILABLE_CODES.has(e.code) || e.code.startsWith("08"))) return true;
  return typeof e.message === "string" && UNAVAILABLE_MESSAGES.test(e.message);
}

/**
 * Maps a PostgreSQL error to a UserError, or returns undefined (a bug: answered as a 500).
 * Only messages that the database's own rules raise (`raise exception '…'` in PL/pgSQL) are shown
 * as they are; PostgreSQL's built-in messages ("permission denied for table …", "invalid input
 * syntax for type uuid …") never reach a user, they get a sentence per SQLSTATE instead.
 */
export function fromDatabaseError(error: unknown): UserError | undefined {
  if (isDatabaseUnavailable(error)) return new UserError(503, DATABASE_UNAVAILABLE, "DATABASE_UNAVAILABLE");
  const e = error as { code?: string; message?: string; constraint?: string; hint?: string; routine?: string };
  if (!e || typeof e !== "object" || typeof e.code !== "string") return undefined;
  // A message written for users by a rule in the database (raise exception in PL/pgSQL).
  const own = e.routine === "exec_stmt_raise" && typeof e.message === "string" ? e.message : undefined;
  switch (e.code) {
    case "42501":
      if (own && /not in your plan/i.test(own)) {
        return new UserError(402, `${own}.${e.hint ? ` ${e.hint}` : ""}`, "PLAN_REQUIRED");
      }
      return new UserError(403, own ?? "You are not allowed to do that in this tenant.", "FORBIDDEN");
    case "ATPLN":
      return new UserError(402, own ?? "Not in your plan", "PLAN_REQUIRED");
    case "P0002":
      return new UserError(404, own ?? "Not found", "NOT_FOUND");
    case "23505":
      return new UserError(409, own ?? "That already exists.", "CONFLICT");
    case "23514":
      return new UserError(
        400,
        (e.constraint && CONSTRAINT_MESSAGES[e.constraint]) ?? own ?? "One of the values is not allowed.",
        "BAD_USER_INPUT",
      );
    case "23502":
    case "22001":
    case "22023":
    case "23503":
      return new UserError(400, "That refers to something that does not exist in this tenant.", "BAD_USER_INPUT");
    case "22P02":
      return new UserError(
        400,
        own ?? "A value has the wrong format (for example an id that is not a UUID, or text where a number belongs).",
        "BAD_USER_INPUT",
      );
    case "22021":
    case "22P05":
      return new UserError(400, "Text may not contain NUL characters (\\0 or %00).", "BAD_USER_INPUT");
    case "22007":
    case "22008":
      return new UserError(
        400,
        "That is not a valid date or time (check the day of the month, and use years 0001 to 9999).",
        "BAD_USER_INPUT",
      );
    case "22003":
      return new UserError(400, "A number is out of range.", "BAD_USER_INPUT");
    case "2201W":
    case "2201X":
      return new UserError(400, "Page sizes and offsets must be zero or more.", "BAD_USER_INPUT");
    case "55000":
      if (own && /not ready/i.test(own)) return new UserError(409, `${own}.`, "NOT_READY");
      return new UserError(409, "This incident is deleted; restore it before changing it.", "INCIDENT_DELETED");
    case "57014":
      return new UserError(503, "The request took too long and was cancelled.", "TIMEOUT");
    default:
      // Any other data exception (class 22) is a value the database could not accept.
      if (e.code.startsWith("22"))
        return new UserError(400, own ?? "One of the values is not valid.", "BAD_USER_INPUT");
      return undefined;
  }
}
