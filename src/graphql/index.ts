/**
 * The GraphQL API: PostGraphile 5 (Amber preset) over the app_public schema, on the same
 * sessions and API tokens as the pages. Every request runs as the visitor role with the
 * request's context in transaction-local settings, so row-level security decides every answer.
 * Owns the preset (audit log filters and default order, query limits, error messages) and the
 * pre-flight checks (credentials, tenant, CSRF) that give clear errors before GraphQL runs.
 */
import { maxAliasesRule } from "@escape.tech/graphql-armor-max-aliases";
import { maxDepthRule } from "@escape.tech/graphql-armor-max-depth";
import { PgSimplifyInflectionPreset } from "@graphile/simplify-inflection";
import type Koa from "koa";
import type pg from "pg";
import { postgraphile } from "postgraphile";
import type { WithPgClient } from "postgraphile/@dataplan/pg";
import {
  makePgService,
  makeWithPgClientViaPgClientAlreadyInTransaction,
  type NodePostgresPgClient,
} from "postgraphile/adaptors/pg";
import { constant, isSafeError, lambda, object, SafeError } from "postgraphile/grafast";
import { grafserv } from "postgraphile/grafserv/koa/v3";
import { GraphQLError, type GraphQLFormattedError, getOperationAST } from "postgraphile/graphql";
import { sql } from "postgraphile/pg-sql2";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { type ActingContext, contextSettings, openingSql, settingsStatement } from "../db/context.ts";
import { type Prelude, pipelinedQuery, statementName } from "../db/pipeline.ts";
import { checkedTokens } from "../http/checked-tokens.ts";
import { isSameOrigin } from "../http/csrf.ts";
import { fromDatabaseError } from "../http/errors.ts";
import { actingContext, credentialsOf } from "../http/request-context.ts";
import type { Logger } from "../log.ts";
import {
  AuditLogOrderPlugin,
  AuditLogSearchPlugin,
  auditConditions,
  CountBases,
  checkSearchText,
  MAX_OFFSET,
  NEWEST_FIRST,
  OLDEST_FIRST,
  plannedEachTime,
} from "./audit-log.ts";

export const GRAPHQL_PATH = "/graphql";
export const GRAPHIQL_PATH = "/graphiql";
export const MAX_PAGE_SIZE = 100;
const MAX_DEPTH = 10;
export const STATEMENT_TIMEOUT_MS = 5000;

declare module "koa" {
  interface DefaultState {
    graphqlContext?: ActingContext;
  }
}

type SqlFragment = ReturnType<typeof sql.identifier>;

/**
 * The audit log lists newest first unless asked otherwise, and in no order but by time, newest or
 * oldest first: those are the orders its indexes and searches serve at any size. (By action or
 * actor each page sorted the tenant's whole log, 0.35 s in a 2,000,000-entry tenant; by id, or in
 * no order, a condition that seldom matches read the log until it found a page, 0.3 s for an actor
 * and an action that never meet. `condition` filters by all of them instead.)
 */
const AuditLogDefaultsPlugin: GraphileConfig.Plugin = {
  name: "AttestAuditLogDefaultsPlugin",
  version: "1.0.0",
  after: ["PgConnectionArgOrderByDefaultValuePlugin", "PgOrderAllAttributesPlugin", "PgOrderByPrimaryKeyPlugin"],
  schema: {
    hooks: {
      GraphQLEnumType_values(values, _build, context) {
        const { isPgRowSortEnum, pgCodec } = context.scope as { isPgRowSortEnum?: boolean; pgCodec?: { name: string } };
        if (!isPgRowSortEnum || pgCodec?.name !== "auditLog") return values;
        return Object.fromEntries(
          Object.entries(values).filter(([name]) => name === NEWEST_FIRST || name === OLDEST_FIRST),
        );
      },
      GraphQLObjectType_fields_field_args_arg(arg, build, context) {
        const { argName, isPgFieldConnection, pgFieldResource } = context.scope as {
          argName: string;
          isPgFieldConnection?: boolean;
          pgFieldResource?: { codec: { name: string }; parameters?: unknown };
        };
        if (!isPgFieldConnection || !pgFieldResource || pgFieldResource.parameters) return arg;
        if (argName === "orderBy" && pgFieldResource.codec.name === "auditLog") {
          const OrderBy = build.getTypeByName(
            build.inflection.orderByType(build.inflection.tableType(pgFieldResource.codec as never)),
          ) as import("graphql").GraphQLEnumType | undefined;
          const desc = OrderBy?.getValues().find((v) => v.name === NEWEST_FIRST);
          if (desc) return { ...arg, defaultValue: [desc.value] }; // newest first
        }
        return arg;
      },
    },
  },
};

/** Every connection's `first`/`last` is checked at run time (literals and variables alike). */
const MaxPageSizePlugin: GraphileConfig.Plugin = {
  name: "AttestMaxPageSizePlugin",
  version: "1.0.0",
  after: ["PgFirstLastBeforeAfterArgsPlugin"],
  schema: {
    hooks: {
      GraphQLObjectType_fields_field_args_arg(arg, _build, context) {
        const { argName, isPgFieldConnection } = context.scope as { argName: string; isPgFieldConnection?: boolean };
        if (isPgFieldConnection && argName === "offset") {
          return {
            ...arg,
            description: `Skip the first \`n\` values from the \`after\` cursor (at most ${MAX_OFFSET}; page further with cursors). May not be used with \`last\`.`,
            // biome-ignore lint/suspicious/noExplicitAny: grafast step types are generic here
            applyPlan(_parent: any, $connection: any, fieldArg: any) {
              const $n = lambda(
                fieldArg.getRaw(),
                (raw) => {
                  const n = raw as number | null | undefined;
                  if (n != null && n > MAX_OFFSET) {
                    throw new SafeError(
                      `\`offset\` must be at most ${MAX_OFFSET}: page further with \`after\` (or \`before\`) and the cursors of the page you have.`,
                      { code: "OFFSET_LIMIT" },
                    );
                  }
                  return n;
                },
                true,
              );
              $connection.setOffset($n);
            },
          } as typeof arg;
        }
        if (!isPgFieldConnection || (argName !== "first" && argName !== "last")) return arg;
        return {
          ...arg,
          description: `${argName === "first" ? "The first" : "The last"} \`n\` values of the set; at most ${MAX_PAGE_SIZE}.`,
          // biome-ignore lint/suspicious/noExplicitAny: grafast step types are generic here
          applyPlan(_parent: any, $connection: any, fieldArg: any) {
            const $n = lambda(
              fieldArg.getRaw(),
              (raw) => {
                const n = raw as number | null | undefined;
                if (n != null && (n < 0 || n > MAX_PAGE_SIZE)) {
                  throw new SafeError(`\`${argName}\` must be between 0 and ${MAX_PAGE_SIZE}.`, { code: "PAGE_SIZE" });
                }
                return n;
              },
              true,
            );
            if (argName === "last") $connection.setLast($n);
            // `first` is set by the field plan below (it needs `last` to pick the default).
          },
        } as typeof arg;
      },
      GraphQLObjectType_fields_field(field, _build, context) {
        const { isPgFieldConnection } = context.scope as { isPgFieldConnection?: boolean };
        const plan = field.plan as ((...args: unknown[]) => unknown) | undefined;
        if (!isPgFieldConnection || typeof plan !== "function") return field;

        return {
          ...field,
          // biome-ignore lint/suspicious/noExplicitAny: grafast step types are generic here
          plan(parent: any, fieldArgs: any, info: any) {
            // biome-ignore lint/suspicious/noExplicitAny: the connection step
            const $connection = plan(parent, fieldArgs, info) as any;
            // No `first` and no `last`: one page of MAX_PAGE_SIZE, never the whole table.
            // Connections over set-returning functions have `first` but no `last` (they cannot be
            // read backwards): an argument the field does not have counts as not given.
            const $first = lambda(
              [fieldArgs.getRaw("first") ?? constant(null), fieldArgs.getRaw("last") ?? constant(null)],
              ([first, last]: readonly [unknown, unknown]) => {
                if (typeof first === "number" && (first < 0 || first > MAX_PAGE_SIZE)) {
                  throw new SafeError(`\`first\` must be between 0 and ${MAX_PAGE_SIZE}.`, { code: "PAGE_SIZE" });
                }
                return first ?? (last == null ? MAX_PAGE_SIZE : null);
              },
              true,
            );
            $connection.setFirst($first);
            return $connection;
          },
        } as typeof field;
      },
    },
  },
};

/**
 * An update that matched no row the caller may change (another tenant's, a role without the
 * right, a deleted id) answers NOT_FOUND, as deletes do, instead of a payload with `null`.
 */
const UpdateNotFoundPlugin: GraphileConfig.Plugin = {
  name: "AttestUpdateNotFoundPlugin",
  version: "1.0.0",
  schema: {
    hooks: {
      GraphQLObjectType_fields_field(field, _build, context) {
        const { isPgUpdateMutation, pgFieldResource } = context.scope as {
          isPgUpdateMutation?: boolean;
          pgFieldResource?: { name: string };
        };
        const plan = field.plan as ((...args: unknown[]) => unknown) | undefined;
        if (!isPgUpdateMutation || typeof plan !== "function") return field;
        const what = (pgFieldResource?.name ?? "record").replace(/_/g, " ");
        return {
          ...field,
          // biome-ignore lint/suspicious/noExplicitAny: grafast step types are generic here
          plan(...planArgs: any[]) {
            // biome-ignore lint/suspicious/noExplicitAny: the payload's object step
            const $payload = plan(...planArgs) as any;
            const $result = $payload.getStepForKey("result");
            const $found = lambda($result, (row: unknown) => {
              if (row == null) {
                throw new SafeError(
                  `Nothing was updated: there is no such ${what} record that you may change in this tenant.`,
                  { code: "NOT_FOUND" },
                );
              }
              return true;
            });
            return object({ result: $result, found: $found });
          },
        } as typeof field;
      },
    },
  },
};

/**
 * An entry's position, seal time and leaf hash, and the name of the token that acted, as
 * subqueries of the page's own statement. As computed-column functions they ran once per row, and
 * each call re-checked who may read the leaves (row-level security): ~0.2 ms per field per row.
 * Here those checks run once per statement and each lookup is one index probe. The functions
 * (app_public.audit_log_seq, …) stay for SQL users; the answers are the same.
 */
const AuditLogLeafFieldsPlugin: GraphileConfig.Plugin = {
  name: "AttestAuditLogLeafFieldsPlugin",
  version: "1.0.0",
  schema: {
    hooks: {
      GraphQLObjectType_fields(fields, build, context) {
        const { pgCodec } = context.scope as { pgCodec?: { name: string } };
        if (pgCodec?.name !== "auditLog") return fields;
        const { TYPES } = build.dataplanPg;
        // biome-ignore lint/suspicious/noExplicitAny: a PgSelectSingleStep of the audit log
        type Entry = any;
        const subquery = (fragment: (e: SqlFragment) => SqlFragment, codec: unknown) => ($entry: Entry) =>
          $entry.select(fragment($entry.getClassStep().alias), codec);
        const leaf = (column: SqlFragment) => (e: SqlFragment) =>
          sql`(select ${column} from app_hidden.audit_leaves l where l.tenant_id = ${e}.tenant_id and l.entry_id = ${e}.id)`;
        const plans: Record<string, ($entry: Entry) => unknown> = {
          seq: subquery(leaf(sql`l.seq`), TYPES.bigint),
          sealedAt: subquery(leaf(sql`l.sealed_at`), TYPES.timestamptz),
          leafHash: subquery(leaf(sql`encode(l.leaf_hash, 'hex')`), TYPES.text),
          apiTokenName: subquery(
            (e) =>
              sql`(select t.resource_label from app_public.audit_log t
                   where ${e}.api_token_id is not null and t.tenant_id = ${e}.tenant_id
                     and t.action in ('api_token.created', 'api_token.updated') and t.resource_id = ${e}.api_token_id
                     and t.id <= ${e}.id
                   order by t.id desc limit 1)`,
            TYPES.text,
          ),
        };
        for (const [name, plan] of Object.entries(plans)) {
          if (fields[name]) fields[name] = { ...fields[name], plan } as (typeof fields)[string];
        }
        return fields;
      },
    },
  },
};

/**
 * `auditLogs { totalCount }` without a `condition`: the size of the tenant's log, which the
 * database keeps (`app_hidden.audit_entry_count()`: the tree's size plus the entries still
 * pending), instead of counting every entry (~120 ms for 2M entries). With a condition,
 * `app_hidden.audit_connection_count(condition, bases)`: the counts the sealer keeps per hour, day,
 * actor and name where they answer it, the rest from the log (migration 000033), and a word over
 * the whole log from where the schema's last count of it left off (000058); a tenant's
 * `auditLogs` (Tenant.auditLogs) the same, with its tenant as part of the condition. Whether the
 * condition is absent is settled when the operation is planned (`evalIs`: a plan made for an
 * absent condition is not reused for a present one).
 */
const AuditLogTotalCountPlugin: GraphileConfig.Plugin = {
  name: "AttestAuditLogTotalCountPlugin",
  version: "1.0.0",
  after: ["PgConnectionTotalCountPlugin", "PgAllRowsPlugin"],
  schema: {
    hooks: {
      GraphQLObjectType_fields_field(field, build, context) {
        const plan = field.plan as ((...args: unknown[]) => unknown) | undefined;
        if (!plan) return field;
        const { Self } = context;
        const { fieldName, isPgConnectionTotalCountField, pgCodec } = context.scope as {
          fieldName?: string;
          isPgConnectionTotalCountField?: boolean;
          pgCodec?: { name: string };
        };
        if (Self.name === "Tenant" && fieldName === "auditLogs") {
          // A tenant's entries: counted for that tenant (none but the current tenant's are readable).
          return {
            ...field,
            plan(
              parent: { get(attribute: string): unknown },
              fieldArgs: { getRaw(name: string): unknown },
              info: unknown,
            ) {
              const $connection = plan(parent, fieldArgs, info) as object;
              const $condition = lambda(
                [fieldArgs.getRaw("condition"), parent.get("id")] as never,
                ([condition, tenantId]: readonly [Record<string, unknown> | null | undefined, string]) => {
                  const given = condition?.tenantId;
                  // Asked for another tenant's entries within this tenant's: none.
                  const tenant = given === undefined || given === tenantId ? tenantId : NO_TENANT;
                  return { ...(condition ?? {}), tenantId: tenant };
                },
                true,
              );
              conditioned.set($connection, $condition);
              return $connection;
            },
          } as unknown as typeof field;
        }
        if (Self.name === build.inflection.builtin("Query") && fieldName === "auditLogs") {
          return {
            ...field,
            plan(parent: unknown, fieldArgs: { getRaw(name: string): unknown }, info: unknown) {
              const $connection = plan(parent, fieldArgs, info) as object;
              // An input step (constant, variable or literal object) can say what it is at plan time.
              const condition = fieldArgs.getRaw("condition") as { evalIs?(value: unknown): boolean };
              if (condition.evalIs?.(undefined) || condition.evalIs?.(null)) wholeLog.add($connection);
              else conditioned.set($connection, condition);
              return $connection;
            },
          } as unknown as typeof field;
        }
        if (isPgConnectionTotalCountField && pgCodec?.name === "auditLog") {
          const executor = build.input.pgRegistry.pgResources.audit_log.executor;
          const { loadOneWithPgClient } = build.dataplanPg;
          const countBases = countBasesOf(build);
          return {
            ...field,
            plan($connection: object, ...rest: unknown[]) {
              const $condition = conditioned.get($connection);
              if ($condition) {
                // Counted from the kept counts where they answer the condition (migration 000033),
                // a word from where this schema's last count of it left off (000058).
                return loadOneWithPgClient(executor, $condition as never, async (client, lookups) => {
                  const counts: number[] = [];
                  for (const condition of lookups) {
                    for (const [field, value] of Object.entries(condition ?? {})) checkSearchText(field, value);
                    const key = JSON.stringify(condition ?? {});
                    const { rows } = await client.query<{ r: { n: number; base?: unknown } }>({
                      text: "select app_hidden.audit_connection_count($1::jsonb, $2::jsonb) as r",
                      values: [key, JSON.stringify(countBases.get(key))],
                    });
                    countBases.keep(key, rows[0].r.base);
                    counts.push(rows[0].r.n);
                  }
                  return counts;
                });
              }
              if (!wholeLog.has($connection)) return plan($connection, ...rest);
              return loadOneWithPgClient(executor, constant(null), async (client, lookups) => {
                const { rows } = await client.query<{ n: number }>({
                  text: "select app_hidden.audit_entry_count()::int as n",
                });
                return lookups.map(() => rows[0].n);
              });
            },
          } as unknown as typeof field;
        }
        return field;
      },
    },
  },
};
/** Each schema's count bases (see CountBases): one per server, not shared by servers of other databases. */
const countBasesByBuild = new WeakMap<object, CountBases>();
function countBasesOf(build: object): CountBases {
  let bases = countBasesByBuild.get(build);
  if (!bases) {
    bases = new CountBases();
    countBasesByBuild.set(build, bases);
  }
  return bases;
}
/** The auditLogs connections planned without a condition (see AuditLogTotalCountPlugin). */
const wholeLog = new WeakSet<object>();
/** Query.auditLogs connections with a condition, and Tenant.auditLogs ones: the condition's step. */
const conditioned = new WeakMap<object, unknown>();
/** A tenant id no tenant has (the nil UUID): a condition on it counts nothing. */
const NO_TENANT = "00000000-0000-0000-0000-000000000000";

/**
 * How a query-limit rule reports: as a validation error with a code (HTTP 400), not by throwing
 * (which grafserv answers with HTTP 500), and without graphql-armor's "Syntax Error:" prefix.
 */
function reportLimit(code: string) {
  return {
    propagateOnRejection: false,
    onReject: [
      (context: unknown, error: GraphQLError) =>
        (context as { reportError(e: GraphQLError): void }).reportError(
          new GraphQLError(error.message.replace(/^Syntax Error: /, ""), { extensions: { code } }),
        ),
    ],
  };
}

const QueryLimitsPlugin: GraphileConfig.Plugin = {
  name: "AttestQueryLimitsPlugin",
  version: "1.0.0",
  grafserv: {
    middleware: {
      setPreset(next, event) {
        // Reported as validation errors (HTTP 400 with a code), not thrown (which grafserv answers with 500).
        event.validationRules.push(
          maxDepthRule({ n: MAX_DEPTH, ignoreIntrospection: true, ...reportLimit("DEPTH_LIMIT") }) as never,
          maxAliasesRule({ n: 15, ...reportLimit("ALIAS_LIMIT") }) as never,
        );
        return next();
      },
    },
  },
};

/** Database errors the user can act on become clear messages with a code; the rest stay masked. */
export function maskError(error: GraphQLError): GraphQLError | GraphQLFormattedError {
  const original = error.originalError as (Error & { code?: string }) | undefined;
  if (!original || original instanceof GraphQLError) return error;
  const known = fromDatabaseError(original);
  if (known) {
    // A log too large to verify, or a count too large to make, within a request: say what to do instead.
    const message =
      known.code !== "TIMEOUT"
        ? known.message
        : error.path?.[0] === "verifyCurrentAuditChain"
          ? `${known.message} Verifying a large log takes longer than a request may: ask the worker with requestAuditVerification and read the result in auditVerifications.`
          : error.path?.at(-1) === "totalCount"
            ? `${known.message} Counting the entries of this condition took longer than a request may (a short or common word with both an actor and an action is counted, the first time, from the entries of the names that hold the word). Ask without totalCount, or narrow the condition: a longer word, or occurredAfter and occurredBefore.`
            : known.message;
    return new GraphQLError(message, {
      nodes: error.nodes,
      source: error.source,
      positions: error.positions,
      path: error.path,
      extensions: { code: known.code },
    });
  }
  // Errors meant for the client (PostGraphile's "Invalid cursor", our page size checks, "no
  // subscription type"), also when wrapped as the cause of a planning error.
  const safe = [original, (original as { cause?: unknown }).cause].find(
    (e): e is SafeError => e instanceof Error && isSafeError(e),
  );
  if (safe) {
    const message = /no subscription type/i.test(safe.message)
      ? "Subscriptions are not supported: send a query or a mutation."
      : safe.message;
    return new GraphQLError(message, {
      nodes: error.nodes,
      path: error.path,
      extensions: { code: (safe.extensions as { code?: string } | undefined)?.code ?? "BAD_USER_INPUT" },
    });
  }
  if ((original as { extensions?: unknown }).extensions) return error;
  // PostGraphile's own "nothing matched" for updates and deletes (RLS hides rows of other tenants).
  const nothing = /^No values were (updated|deleted) in collection '(\w+)'/.exec(original.message);
  if (nothing) {
    return new GraphQLError(
      `Nothing was ${nothing[1]}: there is no such ${nothing[2].replace(/_/g, " ")} record that you may change in this tenant.`,
      { nodes: error.nodes, path: error.path, extensions: { code: "NOT_FOUND" } },
    );
  }
  const id = Math.random().toString(36).slice(2, 10);
  console.error(`GraphQL error ${id}:`, original);
  return new GraphQLError(`An unexpected error occurred (reference ${id}).`, {
    nodes: error.nodes,
    path: error.path,
    extensions: { code: "INTERNAL" },
  });
}

export function makePreset(options: {
  authPool: pg.Pool;
  visitorRole: string;
  exportSchemaPath?: string;
}): GraphileConfig.Preset {
  return {
    extends: [PostGraphileAmberPreset, PgSimplifyInflectionPreset],
    plugins: [
      ...auditConditions,
      AuditLogOrderPlugin,
      AuditLogDefaultsPlugin,
      AuditLogSearchPlugin,
      AuditLogLeafFieldsPlugin,
      AuditLogTotalCountPlugin,
      MaxPageSizePlugin,
      UpdateNotFoundPlugin,
      QueryLimitsPlugin,
    ],
    pgServices: [
      oneTripSettings(
        makePgService({
          pool: options.authPool,
          schemas: ["app_public"],
          // The schema shows what the visitor role is granted (no mutation without a grant).
          pgSettingsForIntrospection: { role: options.visitorRole },
        }),
        options.authPool,
      ),
    ],
    schema: {
      ...(options.exportSchemaPath ? { exportSchemaSDLPath: options.exportSchemaPath, sortExport: true } : {}),
    },
    grafserv: {
      graphqlPath: GRAPHQL_PATH,
      graphiql: true,
      graphiqlPath: GRAPHIQL_PATH,
      graphiqlOnGraphQLGET: false,
      graphqlOverGET: false,
      watch: false,
      websockets: false,
      maxRequestLength: 100_000,
      maskError,
    },
    grafast: {
      explain: false,
      context(requestContext, args) {
        const ctx = requestContext.koav3?.ctx as Koa.Context | undefined;
        const acting = ctx?.state.graphqlContext;
        const pgSettings: Record<string, string> = acting
          ? contextSettings(acting)
          : { role: options.visitorRole, "attest.surface": "graphql" };
        pgSettings.statement_timeout = String(STATEMENT_TIMEOUT_MS);
        if (getOperationAST(args.document, args.operationName)?.operation === "query") {
          queries.add(pgSettings);
        } else {
          // A write may revoke a token (or a membership, a plan): every token is checked again,
          // from now on and once it is done (graphqlGate).
          checkedTokens.forget();
          if (ctx) ctx.state.graphqlWrites = true;
        }
        return { pgSettings };
      },
    },
  };
}

/**
 * The service with a `withPgClient` that sends each statement of a request together with the
 * request's settings and credential check, in one message and one transaction (pipeline.ts): one
 * round trip where the stock adaptor takes four (begin, settings, statement, commit). A statement
 * run in an explicit transaction (`withTransaction`), and the first use of a prepared statement on
 * a connection, go the long way: `begin; select set_config(…), …; <check>` as one simple-protocol
 * message, the statements, commit. Introspection goes through it too (with the visitor role as
 * its only setting); the SUPERUSER variant, which Attest does not configure, keeps the stock adaptor.
 * Either way a refused check (check_request raises) ends the request before any statement of its
 * own has run, with the GraphQL error the gate turns into 401, 404 or 400.
 */
function oneTripSettings(service: GraphileConfig.PgServiceConfiguration, pool: pg.Pool) {
  const stock = service.adaptor;
  const withPgClient = (async (pgSettings, callback) => {
    const client = await pool.connect();
    try {
      const settings = Object.entries(pgSettings ?? {}).flatMap(([name, value]) =>
        value == null ? [] : [[name, String(value)] as const],
      );
      if (settings.length === 0) return await makeWithPgClientViaPgClientAlreadyInTransaction(client)(null, callback);
      const apiToken = pgSettings?.["attest.api_token"] || undefined;
      const token = apiToken !== undefined;
      const session = Boolean(pgSettings?.["attest.session_token"]);
      const namedTenant = pgSettings?.["attest.tenant"];
      // An API token alone that passed the check in the last second, in a query: not checked again
      // (checked-tokens.ts). What the request may read is the database's decision either way.
      const tokenAlone = session ? undefined : apiToken;
      const checkBegun = checkedTokens.begin();
      const check =
        session ||
        (tokenAlone !== undefined &&
          !(queries.has(pgSettings as object) && checkedTokens.recently(tokenAlone, namedTenant)));
      const tenant = Boolean(namedTenant);
      const checkSql = `select app_hidden.check_request(${token}, ${tenant})`;
      // The check is prepared once per connection, not parsed and planned for every request.
      const checkStatement: Prelude = {
        text: checkSql,
        values: [],
        name: `attest_check_${token}_${tenant}`,
        prepareOnly: true,
      };
      const prelude: Prelude[] = [settingsStatement(settings), ...(check ? [checkStatement] : [])];
      /** The long way: an explicit transaction opened with the settings and the check in one message. */
      const explicit = async <T>(run: () => Promise<T>): Promise<T> => {
        try {
          await client.query(`${openingSql(client, settings)}${check ? `; ${checkSql}` : ""}`);
          const result = await run();
          await client.query("commit");
          return result;
        } catch (error) {
          await client.query("rollback").catch(() => {});
          throw error;
        }
      };
      let queue: Promise<unknown> = Promise.resolve();
      const inTurn = <T>(run: () => Promise<T>): Promise<T> => {
        const result = queue.then(run);
        queue = result.catch(() => {});
        return result;
      };
      const pipelined = {
        rawClient: client,
        query: <TData>(opts: { text: string; values?: ReadonlyArray<unknown>; name?: string; arrayMode?: boolean }) =>
          inTurn(async () => {
            const { name, ready } = statementName(client, plannedEachTime(opts.text) ? undefined : opts.name);
            const values = opts.values as unknown[] | undefined;
            const result = ready
              ? await pipelinedQuery(client, prelude, {
                  text: opts.text,
                  values,
                  ...(name ? { name } : {}),
                  ...(opts.arrayMode ? { rowMode: "array" } : {}),
                })
              : await explicit(() =>
                  client.query({
                    text: opts.text,
                    values,
                    name,
                    ...(opts.arrayMode ? { rowMode: "array" as const } : {}),
                  }),
                );
            return { rows: result.rows as TData[], rowCount: result.rowCount, notices: [] };
          }),
        withTransaction: <T>(run: (tx: NodePostgresPgClient) => Promise<T>) =>
          inTurn(() =>
            explicit(() =>
              makeWithPgClientViaPgClientAlreadyInTransaction(client, true)(null, (tx) =>
                (tx as NodePostgresPgClient).withTransaction(run),
              ),
            ),
          ),
      } as unknown as NodePostgresPgClient;
      try {
        const result = await callback(pipelined);
        if (check && tokenAlone !== undefined) checkedTokens.remember(tokenAlone, namedTenant, checkBegun);
        return result;
      } catch (error) {
        throw credentialError(error, pgSettings ?? {}) ?? error;
      }
    } finally {
      client.release();
    }
  }) as WithPgClient<NodePostgresPgClient>;
  withPgClient.release = () => {};
  return {
    ...service,
    adaptor: {
      ...stock,
      createWithPgClient: (settings: unknown, variant?: "SUPERUSER" | null) =>
        variant === "SUPERUSER"
          ? stock.createWithPgClient(settings as never, variant)
          : (withPgClient as unknown as ReturnType<typeof stock.createWithPgClient>),
    },
  } as GraphileConfig.PgServiceConfiguration;
}

export const CREDENTIAL_CODES: Record<string, number> = {
  UNAUTHENTICATED: 401,
  UNKNOWN_TENANT: 404,
  TENANT_REQUIRED: 400,
};

/** The GraphQL error for a refused credential check (SQLSTATE AT401, AT404, AT400 from app_hidden.check_request), or null. */
function credentialError(error: unknown, settings: Record<string, string | undefined>): SafeError | null {
  const code = (error as { code?: unknown } | null)?.code;
  const token = settings["attest.api_token"];
  const tenant = settings["attest.tenant"];
  if (code === "AT401") {
    return new SafeError(
      token
        ? "This API token is not valid: it is unknown, revoked or expired."
        : "Your session has expired or was signed out. Sign in again.",
      { code: "UNAUTHENTICATED" },
    );
  }
  if (code === "AT404") {
    return new SafeError(`You are not a member of a tenant "${tenant}" (X-Tenant header).`, { code: "UNKNOWN_TENANT" });
  }
  if (code === "AT400") {
    return new SafeError("You belong to several tenants: name one in the X-Tenant header (its slug).", {
      code: "TENANT_REQUIRED",
    });
  }
  return null;
}

/** The settings of requests that are queries (not mutations): a recently checked token is not checked again. */
const queries = new WeakSet<object>();

/** `last_used_at` is kept to the minute (touch_api_token): ask at most once a minute per token. */
const touched = new Map<string, number>();
function touchDue(token: string): boolean {
  const now = Date.now();
  if (now - (touched.get(token) ?? 0) < 60_000) return false;
  if (touched.size >= 10_000) touched.clear();
  touched.set(token, now);
  return true;
}

/**
 * Koa middleware in front of grafserv: cookie-authenticated requests must be same-origin JSON
 * POSTs; bad credentials and unknown tenants get a clear GraphQL error before anything runs.
 */
export function graphqlGate(options: { authPool: pg.Pool; visitorRole: string }): Koa.Middleware {
  return async (ctx, next) => {
    if (ctx.path !== GRAPHQL_PATH) return next();
    const fail = (status: number, code: string, message: string) => {
      ctx.status = status;
      ctx.type = "application/json";
      ctx.body = { errors: [{ message, extensions: { code } }] };
    };
    if (ctx.method !== "POST")
      return fail(405, "METHOD_NOT_ALLOWED", "Send GraphQL requests as POST with a JSON body.");
    const credentials = credentialsOf(ctx);
    // An Authorization header that is not one bearer token ("Bearer a b", "Basic …", "Bearer"):
    // refused, not answered as if no credentials had been sent (an empty result, status 200).
    if (ctx.get("authorization") && !credentials.apiToken) {
      return fail(
        401,
        "UNAUTHENTICATED",
        "The Authorization header must be `Bearer <API token>`: one token, with no spaces in it.",
      );
    }
    if (credentials.sessionToken && !credentials.apiToken) {
      if (!ctx.is("application/json")) {
        return fail(
          415,
          "CSRF",
          "Cookie-authenticated GraphQL requests must be JSON (Content-Type: application/json).",
        );
      }
      if (!isSameOrigin(ctx))
        return fail(403, "CSRF", "Cookie-authenticated GraphQL requests must come from this site.");
    }
    const tenant = ctx.get("x-tenant") || undefined;
    const acting = actingContext(ctx, { role: options.visitorRole, surface: "graphql", tenant, credentials });
    if (credentials.apiToken && touchDue(credentials.apiToken)) {
      // At most once a minute per token (not on every call); awaited, so the write is done before
      // the request's own work (a later reader never sees it land out of order).
      await options.authPool.query("select app_private.touch_api_token($1)", [credentials.apiToken]).catch(() => {});
    }
    ctx.state.graphqlContext = acting;
    await next();
    if (ctx.state.graphqlWrites) checkedTokens.forget();
    // A result that failed only because the database could not be reached is a 503, as on the pages.
    const body = ctx.body as unknown;
    // A result without errors (the usual case) is left as it is, without being read as text.
    if (ctx.status === 200 && Buffer.isBuffer(body) && !body.includes('"errors"')) return;
    const text = Buffer.isBuffer(body)
      ? body.toString("utf8")
      : typeof body === "string"
        ? body
        : body && typeof body === "object" && "errors" in body
          ? JSON.stringify((body as { errors: unknown }).errors)
          : undefined;
    if (ctx.status >= 500) {
      // grafserv could not run the request at all (its schema is read from the database on first
      // use): if that is because the database is unreachable, say so, as the pages do.
      const unreachable = await options.authPool.query("select 1").then(
        () => undefined,
        (error: unknown) => fromDatabaseError(error),
      );
      if (unreachable?.code === "DATABASE_UNAVAILABLE") return fail(503, unreachable.code, unreachable.message);
    }
    if (ctx.status !== 200 || !text) return;
    if (text.includes('"DATABASE_UNAVAILABLE"')) ctx.status = 503;
    // The credentials failed their check (see credentialError): that error alone, with its status.
    const refused = /"code":"(UNAUTHENTICATED|UNKNOWN_TENANT|TENANT_REQUIRED)"/.exec(text);
    if (refused) {
      const errors = (
        JSON.parse(text.startsWith("{") ? text : `{"errors":${text}}`) as {
          errors: Array<{ message: string; extensions?: { code?: string } }>;
        }
      ).errors;
      const error = errors.find((e) => e.extensions?.code === refused[1]);
      if (error) return fail(CREDENTIAL_CODES[refused[1]], refused[1], error.message);
    }
  };
}

export interface GraphQLServer {
  /** Mounts grafserv on the app and the HTTP server (call before taking app.callback()). */
  addTo(app: Koa, server: import("node:http").Server): Promise<void>;
  release(): Promise<void>;
}

export function createGraphQL(options: { authPool: pg.Pool; visitorRole: string; log: Logger }): GraphQLServer {
  const pgl = postgraphile(makePreset(options));
  const serv = pgl.createServ(grafserv);
  return {
    async addTo(app, server) {
      app.use(graphqlGate(options));
      await serv.addTo(app, server);
    },
    async release() {
      await pgl.release();
    },
  };
}
