/**
 * LIKE / ILIKE patterns from what a person typed: `\`, `%` and `_` stand for themselves (escaped
 * with PostgreSQL's default escape character), so a search for "50%" or "a_b" means just that.
 */

/** The text with LIKE's wildcards and escape character escaped. */
const likeEscape = (value: string) => value.replace(/[\\%_]/g, (c) => `\\${c}`);

/** A pattern matching text that contains `value`. */
export const likeContaining = (value: string) => `%${likeEscape(value)}%`;

/** A pattern matching text that starts with `value`. */
export const likePrefix = (value: string) => `${likeEscape(value)}%`;
