/**
 * The audit log over GraphQL (`auditLogs`): its extra conditions, its order (newest first by
 * time, as the Audit Log page) and how a searching condition is answered at any size.
 *
 * PostgreSQL answers `auditLogs(first: 25, condition: {…})` as one keyset query. For conditions
 * an index serves in order (an action, an actor, an incident, a time window) that query reads
 * about a page. For the searching ones (`actorContains`, `resourceLabelContains`,
 * `actionPrefix`) it cannot: it either walks the log testing every entry (a rare actor in a
 * 2M-entry tenant: seconds) or collects every match before sorting (a common word: over a
 * second). So when such a condition is given, in the default order or its reverse, the query
 * also asks the database for the capture numbers of the next page's entries after the cursor
 * (`app_hidden.audit_connection_ids`, migration 000031: the Audit Log page's search, one ordered
 * range per matching actor or action merged, the tenant's names of the day for a word) and reads only
 * those. The conditions themselves still apply, so the answer is the same as without it.
 */
import { lambda, SafeError } from "postgraphile/grafast";
import { sql } from "postgraphile/pg-sql2";
import { addPgTableCondition, addPgTableOrderBy } from "postgraphile/utils";
import { likeContaining as contains, likePrefix } from "../db/like.ts";

type SqlFragment = ReturnType<typeof sql.identifier>;

/** What a query builder of @dataplan/pg offers the callbacks below. */
interface QueryBuilder {
  alias: SqlFragment;
  mode: string;
  where(condition: SqlFragment): void;
  orderBy(spec: { attribute: string; direction: "ASC" | "DESC" }): void;
  setOrderIsUnique(): void;
  setMeta(key: string, value: unknown): void;
  getMetaRaw(key: string): unknown;
}

/**
 * Whether a statement finds its page through audit_connection_ids (searchRoute below): such a
 * statement is planned with its values each time it runs (unnamed, not prepared). Its best plan
 * reads the page's entries by their capture numbers; PostgreSQL's generic plan of a prepared
 * statement, which it goes over to after five runs, does not know them and read by another index
 * instead: `resourceLabelContains` "ach no" with the system and a window, oldest first, in the
 * 2,000,000-entry bench tenant read 26,255 of the system's entries of the window (65 ms a request
 * from the sixth on, 8 ms before). Planning it costs ~0.3 ms; the statements without a searching
 * condition (the plain pages an integrator polls) stay prepared.
 */
export const plannedEachTime = (text: string) => text.includes("app_hidden.audit_connection_ids(");

/** Set on a query whose page is found by audit_connection_ids (the conditions then test rows only). */
const ROUTED = "attestAuditSearchRouted";

/** `offset` reads and skips that many rows: deeper than this, cursors page at the same cost. */
export const MAX_OFFSET = 1_000;
export const NEWEST_FIRST = "NEWEST_FIRST";
export const OLDEST_FIRST = "OLDEST_FIRST";

const routed = (condition: { dangerouslyGetParent?(): unknown }) => {
  const parent = condition.dangerouslyGetParent?.() as Partial<QueryBuilder> | undefined;
  return parent?.getMetaRaw?.(ROUTED) === true;
};

/**
 * The longest text each searching condition takes, the length of what it searches: an action
 * name, an email address (as the sign-in and invitation forms take it), a resource label (cut at
 * 500 when recorded). Longer text is refused with a clear error instead of searched: a
 * 60,000-character word ran to the statement timeout.
 */
const MAX_CHARACTERS: Record<string, [number, string]> = {
  actionPrefix: [100, "action names are at most 100 characters"],
  actorContains: [320, "an email address is at most 320 characters"],
  resourceLabelContains: [500, "resource labels are recorded up to 500 characters"],
};

/** Throws (a GraphQL error with code BAD_USER_INPUT) when a searching condition's text is too long. */
export function checkSearchText(field: string, value: unknown) {
  const limit = MAX_CHARACTERS[field];
  // In characters (code points), as PostgreSQL counts them.
  if (!limit || typeof value !== "string" || value.length <= limit[0] || [...value].length <= limit[0]) return;
  throw new SafeError(
    `\`${field}\` may be at most ${limit[0]} characters long (${limit[1]}); this one has ${[...value].length}.`,
    { code: "BAD_USER_INPUT" },
  );
}

/** One extra `condition` field on the audit log: `where` builds the SQL for a given value. */
function auditCondition(
  name: string,
  description: string,
  type: "String" | "Datetime",
  where: (alias: SqlFragment, value: string, routed: boolean) => SqlFragment,
): GraphileConfig.Plugin {
  return addPgTableCondition({ schemaName: "app_public", tableName: "audit_log" }, name, (build) => ({
    type: (type === "String" ? build.graphql.GraphQLString : build.getTypeByName("Datetime")) as never,
    description,
    apply(condition: { alias: unknown; where(s: unknown): void; dangerouslyGetParent?(): unknown }, value: unknown) {
      if (value == null) return;
      checkSearchText(name, value);
      condition.where(where(condition.alias as SqlFragment, String(value), routed(condition)));
    },
  }));
}

/** Audit log filters beyond exact matches. */
export const auditConditions: GraphileConfig.Plugin[] = [
  auditCondition(
    "actionPrefix",
    "Actions starting with this text, e.g. `incident.` for every incident action (at most 100 characters).",
    "String",
    (e, v) => sql`${e}.action like ${sql.value(likePrefix(v))}`,
  ),
  auditCondition(
    "actorContains",
    "Entries whose actor (email or `system`) contains this text, ignoring case (at most 320 characters).",
    "String",
    // Outside a found page (another order, `totalCount`): the tenant's few distinct actors are
    // matched first, once (a subquery, not once per row); when none matches, a one-time filter
    // skips reading the log at all.
    (e, v, isRouted) => {
      if (isRouted) return sql`${e}.actor_label ilike ${sql.value(contains(v))}`;
      const actors = sql`(select app_hidden.audit_actors_matching(${sql.value(contains(v))}))`;
      return sql`${e}.actor_label = any (${actors}::text[]) and (select cardinality(${actors})) > 0`;
    },
  ),
  auditCondition(
    "resourceLabelContains",
    "Entries whose resource label (incident title, filename, …) contains this text, ignoring case (at most 500 characters).",
    "String",
    // Outside a found page: matched through the tenant's resource names by a function of the
    // database (ILIKE is not leakproof, so row-level security would keep an index from being used).
    (e, v, isRouted) =>
      isRouted
        ? sql`${e}.resource_label ilike ${sql.value(contains(v))}`
        : sql`${e}.id in (select app_hidden.audit_label_matches(${sql.value(contains(v))})) and ${e}.resource_label ilike ${sql.value(contains(v))}`,
  ),
  auditCondition(
    "occurredAfter",
    "Entries at or after this time.",
    "Datetime",
    (e, v) => sql`${e}.occurred_at >= ${sql.value(v)}::timestamptz`,
  ),
  auditCondition(
    "occurredBefore",
    "Entries before this time.",
    "Datetime",
    (e, v) => sql`${e}.occurred_at < ${sql.value(v)}::timestamptz`,
  ),
];

const byTime = (direction: "ASC" | "DESC") => (qb: QueryBuilder) => {
  qb.orderBy({ attribute: "occurred_at", direction });
  qb.orderBy({ attribute: "id", direction });
  qb.setOrderIsUnique();
};

/** NEWEST_FIRST (the default) and OLDEST_FIRST: by time, then capture number, as the page lists. */
export const AuditLogOrderPlugin = addPgTableOrderBy({ schemaName: "app_public", tableName: "audit_log" }, () => ({
  [NEWEST_FIRST]: {
    description: "Newest first: by `occurredAt`, then `rowId` (the default; the Audit Log page's order).",
    extensions: { grafast: { apply: byTime("DESC") } },
  },
  [OLDEST_FIRST]: {
    description: "Oldest first: by `occurredAt`, then `rowId`.",
    extensions: { grafast: { apply: byTime("ASC") } },
  },
}));

/** The condition fields this module can hand to audit_connection_ids, and how. */
const FILTER_FIELDS: Record<string, (filter: Record<string, unknown>, value: unknown) => void> = {
  action: (f, v) => {
    f.actions = [String(v)];
  },
  actionPrefix: (f, v) => {
    f.actionPrefix = likePrefix(String(v));
  },
  actorLabel: (f, v) => {
    f.actor = String(v);
  },
  actorContains: (f, v) => {
    f.actorPattern = contains(String(v));
  },
  resourceLabelContains: (f, v) => {
    f.labelPattern = contains(String(v));
  },
  incidentId: (f, v) => {
    f.incident = String(v);
  },
  occurredAfter: (f, v) => {
    f.from = String(v);
  },
  occurredBefore: (f, v) => {
    f.to = String(v);
  },
};
const SEARCHING = ["actionPrefix", "actorContains", "resourceLabelContains"];
/** The conditions added above (a null value means no condition), as opposed to a column's. */
const EXTRA_CONDITIONS = [...SEARCHING, "occurredAfter", "occurredBefore"];

/** The filter audit_connection_ids is handed for a condition's given fields (each one FILTER_FIELDS knows). */
export function connectionFilter(given: ReadonlyArray<readonly [string, unknown]>): Record<string, unknown> {
  const filter: Record<string, unknown> = {};
  for (const [k, v] of given) FILTER_FIELDS[k](filter, v);
  return filter;
}

/** The (occurred_at, id) of a NEWEST_FIRST/OLDEST_FIRST cursor, or null when it is not one. */
function cursorKey(cursor: unknown): { at: string; id: string } | null {
  if (typeof cursor !== "string") return null;
  try {
    const parsed = JSON.parse(Buffer.from(cursor, "base64").toString("utf8")) as unknown;
    if (!Array.isArray(parsed) || parsed.length !== 3) return null;
    const [, at, id] = parsed;
    if (typeof at !== "string" || Number.isNaN(Date.parse(at))) return null;
    if (typeof id !== "string" && typeof id !== "number") return null;
    if (!/^\d{1,19}$/.test(String(id))) return null;
    return { at, id: String(id) };
  } catch {
    return null;
  }
}

interface ConnectionArgs {
  condition: unknown;
  orderBy: unknown;
  first: unknown;
  last: unknown;
  after: unknown;
  before: unknown;
  offset: unknown;
}

/**
 * The callback that restricts the query to the page audit_connection_ids finds, or null when the
 * query is left as PostgreSQL plans it (no searching condition, another order, or both
 * ends of a range given).
 */
export function searchRoute(args: ConnectionArgs): ((qb: QueryBuilder) => void) | null {
  const condition = (args.condition ?? {}) as Record<string, unknown>;
  // A column's condition given as null asks for NULL in that column (PostGraphile's meaning):
  // left to the plain query. The extra conditions ignore null.
  if (Object.entries(condition).some(([k, v]) => v === null && !EXTRA_CONDITIONS.includes(k))) return null;
  const given = Object.entries(condition).filter(([, v]) => v != null);
  // An actor with an action: no one index serves both, and PostgreSQL reads one of them whole for a
  // pair that seldom or never meets (actorLabel ana@… with export.requested, which only the system
  // takes: ~0.45 s in the 2,000,000-entry bench tenant); audit_connection_ids reads the actor's
  // entries only on the days they took the action (migration 000073).
  const keyed = given.some(([k]) => k === "actorLabel") && given.some(([k]) => k === "action");
  if (!keyed && !given.some(([k]) => SEARCHING.includes(k))) return null;
  if (!given.every(([k]) => k in FILTER_FIELDS)) return null;
  const order = Array.isArray(args.orderBy) ? args.orderBy : args.orderBy == null ? [NEWEST_FIRST] : [args.orderBy];
  const orderName = order.length === 1 ? String(order[0]) : "";
  if (orderName !== NEWEST_FIRST && orderName !== OLDEST_FIRST) return null;
  // An offset (at most MAX_OFFSET): the first offset + n + 1 matches are found, and the query
  // skips the offset among them as it would among all entries.
  const skip = Number(args.offset ?? 0);
  if (!Number.isInteger(skip) || skip < 0 || skip > MAX_OFFSET) return null; // the offset check answers
  const fromEnd = args.last != null;
  if (fromEnd ? args.first != null || args.after != null || skip > 0 : args.before != null) return null;
  const n = Number(fromEnd ? args.last : (args.first ?? 100));
  if (!Number.isInteger(n) || n < 0 || n > 100) return null; // the page size check answers
  const cursor = fromEnd ? args.before : args.after;
  const key = cursor == null ? null : cursorKey(cursor);
  if (cursor != null && !key) return null; // PostGraphile answers an invalid cursor
  const filter = connectionFilter(given);
  // Reading from the far end reverses the order; one more entry tells whether there is a next page.
  const ascending = (orderName === OLDEST_FIRST) !== fromEnd;
  return (qb) => {
    if (qb.mode === "aggregate") return; // totalCount counts every match
    qb.setMeta(ROUTED, true);
    qb.where(
      sql`${qb.alias}.id = any ((select app_hidden.audit_connection_ids(${sql.value(JSON.stringify(filter))}::jsonb, ${sql.value(key?.at ?? null)}::timestamptz, ${sql.value(key?.id ?? null)}::bigint, ${sql.value(ascending)}, ${sql.value(skip + n + 1)}))::bigint[])`,
    );
  };
}

/** Every audit log connection (Query.auditLogs, Tenant.auditLogs) gets the route above. */
export const AuditLogSearchPlugin: GraphileConfig.Plugin = {
  name: "AttestAuditLogSearchPlugin",
  version: "1.0.0",
  schema: {
    hooks: {
      GraphQLObjectType_fields_field(field, _build, context) {
        const { isPgFieldConnection, pgFieldResource } = context.scope as {
          isPgFieldConnection?: boolean;
          pgFieldResource?: { codec: { name: string }; parameters?: unknown };
        };
        const plan = field.plan as ((...args: unknown[]) => unknown) | undefined;
        if (!isPgFieldConnection || pgFieldResource?.codec.name !== "auditLog" || pgFieldResource.parameters) {
          return field;
        }
        if (typeof plan !== "function") return field;
        return {
          ...field,
          // biome-ignore lint/suspicious/noExplicitAny: grafast step types are generic here
          plan(parent: any, fieldArgs: any, info: any) {
            // biome-ignore lint/suspicious/noExplicitAny: the connection step
            const $connection = plan(parent, fieldArgs, info) as any;
            const raw = (name: string) => fieldArgs.getRaw(name);
            const $route = lambda(
              [raw("condition"), raw("orderBy"), raw("first"), raw("last"), raw("after"), raw("before"), raw("offset")],
              ([condition, orderBy, first, last, after, before, offset]: readonly unknown[]) =>
                searchRoute({ condition, orderBy, first, last, after, before, offset }),
              true,
            );
            $connection.getSubplan().apply($route);
            return $connection;
          },
        } as typeof field;
      },
    },
  },
};

/** How many conditions' count bases are kept, how many tenants' per condition, and how long a condition may be. */
const COUNT_BASES = 1000;
const COUNT_BASE_TENANTS = 16;
const COUNT_BASE_KEY_CHARS = 1000;

/**
 * What `app_hidden.audit_connection_count(condition, bases)` (migration 000058) hands back for a
 * word over the whole log or a window (000092), per tenant: how many entries matched up to a cursor of the names,
 * which can never change. Given back on the next count of the same condition, it lets the
 * database count only the entries named since, so asking again (the next page, a refresh) does
 * not re-read every name that holds a common word. Kept for the most recently counted conditions;
 * the database checks the tenant and whether the base can be used.
 */
export class CountBases {
  readonly #bases = new Map<string, Record<string, unknown>>();

  /** The bases kept for a condition (by tenant id), or null. */
  get(condition: string): Record<string, unknown> | null {
    const bases = this.#bases.get(condition);
    if (!bases) return null;
    this.#bases.delete(condition); // most recently used last
    this.#bases.set(condition, bases);
    return bases;
  }

  /** Keeps what a count returned as `base` (nothing when it returned none). */
  keep(condition: string, base: unknown): void {
    // (A longer condition is counted in full each time: what is kept stays small whatever is asked.)
    if (base == null || typeof base !== "object" || condition.length > COUNT_BASE_KEY_CHARS) return;
    const kept: Record<string, unknown> = { ...this.#bases.get(condition) };
    for (const tenant of Object.keys(base)) delete kept[tenant]; // (the newest goes last)
    const entries = Object.entries({ ...kept, ...(base as Record<string, unknown>) });
    this.#bases.delete(condition);
    this.#bases.set(condition, Object.fromEntries(entries.slice(-COUNT_BASE_TENANTS)));
    for (const oldest of this.#bases.keys()) {
      if (this.#bases.size <= COUNT_BASES) break;
      this.#bases.delete(oldest);
    }
  }
}
