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

/** Maps a PostgreSQL error raised by the database's rules to a UserError, or returns undefined. */
export function fromDatabaseError(error: unknown): UserError | undefined {
  const e = error as { code?: string; message?: string; constraint?: string };
  switch (e.code) {
    case "42501":
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
    case "23502":
    case "22001":
    case "22023":
    case "22P02":
    case "23503":
      return new UserError(400, e.message ?? "Invalid input", "BAD_USER_INPUT");
    case "57014":
      return new UserError(503, "The request took too long and was cancelled.", "TIMEOUT");
    default:
      return undefined;
  }
}
