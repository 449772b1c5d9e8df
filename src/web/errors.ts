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

/** Maps a PostgreSQL error raised by the database's rules to a UserError, or returns undefined. */
export function fromDatabaseError(error: unknown): UserError | undefined {
  const e = error as { code?: string; message?: string; constraint?: string; hint?: string };
  switch (e.code) {
    case "42501":
      if (e.message && /not in your plan/i.test(e.message)) {
        return new UserError(402, `${e.message}.${e.hint ? ` ${e.hint}` : ""}`, "PLAN_REQUIRED");
      }
      return new UserError(
        403,
        e.message?.startsWith("new row violates row-level security")
          ? "You are not allowed to do that in this tenant."
          : (e.message ?? "Forbidden"),
        "FORBIDDEN",
      );
    case "ATPLN":
      return new UserError(402, e.message ?? "Not in your plan", "PLAN_REQUIRED");
    case "P0002":
      return new UserError(404, e.message ?? "Not found", "NOT_FOUND");
    case "23505":
      return new UserError(409, e.message ?? "Already exists", "CONFLICT");
    case "23514":
      return new UserError(
        400,
        (e.constraint && CONSTRAINT_MESSAGES[e.constraint]) ?? e.message ?? "Invalid input",
        "BAD_USER_INPUT",
      );
    case "23502":
    case "22001":
    case "22023":
    case "23503":
      return new UserError(400, "That refers to something that does not exist in this tenant.", "BAD_USER_INPUT");
    case "22P02":
      return new UserError(400, e.message ?? "Invalid input", "BAD_USER_INPUT");
    case "55000":
      return new UserError(409, "This incident is deleted; restore it before changing it.", "INCIDENT_DELETED");
    case "57014":
      return new UserError(503, "The request took too long and was cancelled.", "TIMEOUT");
    default:
      return undefined;
  }
}
