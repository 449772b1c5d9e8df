/**
 * API tokens that passed the credential check (`app_hidden.check_request`) within the last second,
 * with the tenant the request named: a read with such a token skips the check, which cost about a
 * tenth of an API request's CPU (one membership lookup and one statement more in PostgreSQL).
 *
 * The check only decides how a refusal is answered (401, 404, 400 with that error alone); what a
 * request may see or change is decided by the database on every statement, whatever is kept
 * here. A token revoked or expired elsewhere (another Attest process, SQL) is therefore answered
 * 401 at most a second later, and its reads meanwhile find nothing. Everything is forgotten when
 * this process runs a write: a GraphQL mutation, or any page or API request but GET and HEAD
 * (before it runs and again when it is done), so a token revoked here is refused at once.
 * Only API tokens alone are kept; a request with a session is always checked.
 */

export const CHECKED_TOKEN_MS = 1000;
const MAX_KEPT = 10_000;

const passed = new Map<string, number>();
const key = (token: string, tenant: string | undefined) => `${tenant ?? ""}\u0000${token}`;
/** Moves on at each forget(): a check that was sent before a write began is not kept after it. */
let generation = 0;

export const checkedTokens = {
  /** Whether `token` (with `tenant` named) passed the check less than CHECKED_TOKEN_MS ago. */
  recently(token: string, tenant: string | undefined, now = Date.now()): boolean {
    const at = passed.get(key(token, tenant));
    return at !== undefined && now - at < CHECKED_TOKEN_MS;
  },
  /** Taken before a check is sent, and given back to remember() once it passed. */
  begin(): { at: number; generation: number } {
    return { at: Date.now(), generation };
  },
  /** `token` passed the check begun at `since`: kept unless a write began or ended since. */
  remember(token: string, tenant: string | undefined, since: { at: number; generation: number }) {
    if (since.generation !== generation) return;
    if (passed.size >= MAX_KEPT) passed.clear();
    passed.set(key(token, tenant), since.at);
  },
  forget() {
    generation++;
    passed.clear();
  },
};
