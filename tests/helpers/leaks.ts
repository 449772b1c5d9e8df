/** What no answer to a client may contain: stack frames, SQL, PostgreSQL's own messages, JS errors. */
export const LEAKS =
  /\n\s+at |node_modules|SQLSTATE|syntax error|invalid input syntax|permission denied for|violates (check|row-level|unique)|relation "|column "|function app_|duplicate key|out of range for type|TypeError|ReferenceError|Cannot read properties|An error occurred \(logged/i;
