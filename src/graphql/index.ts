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
import { makePgService } from "postgraphile/adaptors/pg";
import { constant, isSafeError, lambda, object, SafeError } from "postgraphile/grafast";
import { grafserv } from "postgraphile/grafserv/koa/v3";
import { GraphQLError, type GraphQLFormattedError } from "postgraphile/graphql";
import { sql } from "postgraphile/pg-sql2";
import { PostGraphileAmberPreset } from "postgraphile/presets/amber";
import { addPgTableCondition } from "postgraphile/utils";
import { type ActingContext, contextSettings, queryInContext } from "../db/context.ts";
import type { Logger } from "../log.ts";
import { isSameOrigin } from "../web/csrf.ts";
import { fromDatabaseError } from "../web/errors.ts";
import { actingContext, credentialsOf } from "../web/request-context.ts";

export const GRAPHQL_PATH = "/graphql";
export const GRAPHIQL_PATH = "/graphiql";
export const MAX_PAGE_SIZE = 100;
const MAX_DEPTH = 10;
const STATEMENT_TIMEOUT_MS = 5000;

declare module "koa" {
  interface DefaultState {
    graphqlContext?: ActingContext;
  }
}

const likeEscape = (value: string) => value.replace(/[\\%_]/g, (c) => `\\${c}`);

type SqlFragment = ReturnType<typeof sql.identifier>;

/** One extra `condition` field on the audit log: `where` builds the SQL for a given value. */
function auditCondition(
  name: string,
  description: string,
  type: "String" | "Datetime",
  where: (alias: SqlFragment, value: string) => SqlFragment,
): GraphileConfig.Plugin {
  return addPgTableCondition({ schemaName: "app_public", tableName: "audit_log" }, name, (build) => ({
    type: (type === "String" ? build.graphql.GraphQLString : build.getTypeByName("Datetime")) as never,
    description,
    apply(condition: { alias: unknown; where(s: unknown): void }, value: unknown) {
      if (value == null) return;
      condition.where(where(condition.alias as SqlFragment, String(value)));
    },
  }));
}

/** Audit log filters beyond exact matches; each is served by an index that leads with tenant_id. */
const auditConditions: GraphileConfig.Plugin[] = [
  auditCondition(
    "actionPrefix",
    "Actions starting with this text, e.g. `incident.` for every incident action.",
    "String",
    (e, v) => sql`${e}.action like ${sql.value(`${likeEscape(v)}%`)}`,
  ),
  auditCondition(
    "actorContains",
    "Entries whose actor (email or `system`) contains this text, ignoring case.",
    "String",
    // The tenant's few distinct actors are matched first, once (a subquery, not once per row); the
    // entries are then an index range each.
    (e, v) =>
      sql`${e}.actor_label = any ((select app_hidden.audit_actors_matching(${sql.value(`%${likeEscape(v)}%`)}))::text[])`,
  ),
  auditCondition(
    "resourceLabelContains",
    "Entries whose resource label (incident title, filename, …) contains this text, ignoring case.",
    "String",
    // Matched with the trigram index by a function of the database (ILIKE is not leakproof, so
    // row-level security would keep the index from being used here).
    (e, v) =>
      sql`${e}.id in (select app_hidden.audit_label_matches(${sql.value(`%${likeEscape(v)}%`)})) and ${e}.resource_label ilike ${sql.value(`%${likeEscape(v)}%`)}`,
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

/** The audit log lists newest first unless asked otherwise; pages hold at most MAX_PAGE_SIZE. */
const AuditLogDefaultsPlugin: GraphileConfig.Plugin = {
  name: "AttestAuditLogDefaultsPlugin",
  version: "1.0.0",
  after: ["PgConnectionArgOrderByDefaultValuePlugin"],
  schema: {
    hooks: {
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
          const desc = OrderBy?.getValues().find((v) => v.name === "PRIMARY_KEY_DESC");
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
    return new GraphQLError(known.message, {
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
    plugins: [...auditConditions, AuditLogDefaultsPlugin, MaxPageSizePlugin, UpdateNotFoundPlugin, QueryLimitsPlugin],
    pgServices: [
      makePgService({
        pool: options.authPool,
        schemas: ["app_public"],
        // The schema shows what the visitor role is granted (no mutation without a grant).
        pgSettingsForIntrospection: { role: options.visitorRole },
      }),
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
      context(requestContext) {
        const ctx = requestContext.koav3?.ctx as Koa.Context | undefined;
        const acting = ctx?.state.graphqlContext;
        const pgSettings: Record<string, string> = acting
          ? contextSettings(acting)
          : { role: options.visitorRole, "attest.surface": "graphql" };
        pgSettings.statement_timeout = String(STATEMENT_TIMEOUT_MS);
        return { pgSettings };
      },
    },
  };
}

interface CredentialCheck {
  user_id: string | null;
  tenant_id: string | null;
  tenants: number;
}

/**
 * Who the credentials name, and in which tenant: one round trip (the settings, the question and
 * the commit go as one simple-protocol message, values quoted by the driver).
 */
async function credentialCheck(pool: pg.Pool, acting: ActingContext): Promise<CredentialCheck> {
  const { rows } = await queryInContext<CredentialCheck>(
    pool,
    acting,
    () =>
      "select app_public.current_user_id() as user_id, app_public.current_tenant_id() as tenant_id, (select count(*)::int from app_public.tenants) as tenants",
  );
  return rows[0];
}

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
    if (credentials.sessionToken || credentials.apiToken) {
      const who = await credentialCheck(options.authPool, acting);
      if (!who.user_id) {
        return credentials.apiToken
          ? fail(401, "UNAUTHENTICATED", "This API token is not valid: it is unknown, revoked or expired.")
          : fail(401, "UNAUTHENTICATED", "Your session has expired or was signed out. Sign in again.");
      }
      if (tenant && !who.tenant_id && !credentials.apiToken) {
        return fail(404, "UNKNOWN_TENANT", `You are not a member of a tenant "${tenant}" (X-Tenant header).`);
      }
      if (!who.tenant_id && !credentials.apiToken && who.tenants > 1) {
        return fail(
          400,
          "TENANT_REQUIRED",
          "You belong to several tenants: name one in the X-Tenant header (its slug).",
        );
      }
      if (credentials.apiToken && touchDue(credentials.apiToken)) {
        // At most once a minute per token (not on every call); awaited, so the write is done before
        // the request's own work (a later reader never sees it land out of order).
        await options.authPool.query("select app_private.touch_api_token($1)", [credentials.apiToken]).catch(() => {});
      }
    }
    ctx.state.graphqlContext = acting;
    await next();
    // A result that failed only because the database could not be reached is a 503, as on the pages.
    const body = ctx.body as unknown;
    const text = Buffer.isBuffer(body)
      ? body.toString("utf8")
      : typeof body === "string"
        ? body
        : body && typeof body === "object" && "errors" in body
          ? JSON.stringify((body as { errors: unknown }).errors)
          : undefined;
    if (ctx.status === 200 && text?.includes('"DATABASE_UNAVAILABLE"')) ctx.status = 503;
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
