/**
 * Request context for the database: who is acting, in which tenant, from where.
 * Owns the names of the transaction-local settings the database reads (attest.*) and the
 * one way to run SQL under them. The database decides what that context may see and do.
 */
import { createHash } from "node:crypto";
import type pg from "pg";
import { type Prelude, pipelinedQuery, statementName } from "./pipeline.ts";

export type Surface = "web" | "graphql" | "api" | "worker" | "sql" | "seed";

export interface ActingContext {
  /** The database role to switch to (the visitor role for signed-in users). */
  role?: string;
  sessionToken?: string;
  apiToken?: string;
  /** The tenant to act in: its id or slug (the database checks membership). */
  tenant?: string;
  requestId?: string;
  ip?: string;
  userAgent?: string;
  surface: Surface;
  /** The operator allows webhooks to private addresses (ATTEST_WEBHOOKS_ALLOW_PRIVATE). */
  webhooksAllowPrivate?: boolean;
}

/** The settings as PostGraphile's pgSettings or set_config pairs; unset values are omitted. */
export function contextSettings(context: ActingContext): Record<string, string> {
  const settings: Record<string, string | undefined> = {
    role: context.role,
    "attest.session_token": context.sessionToken,
    "attest.api_token": context.apiToken,
    "attest.tenant": context.tenant,
    "attest.request_id": context.requestId,
    "attest.ip": context.ip,
    "attest.user_agent": context.userAgent,
    "attest.surface": context.surface,
    "attest.webhooks_allow_private": context.webhooksAllowPrivate ? "true" : undefined,
  };
  return Object.fromEntries(
    Object.entries(settings).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/** `begin` and the settings as one simple-protocol statement list (values quoted by the driver). */
export function openingSql(client: pg.ClientBase, settings: ReadonlyArray<readonly [string, string]>): string {
  const calls = settings.map(
    ([name, value]) => `set_config(${client.escapeLiteral(name)}, ${client.escapeLiteral(value)}, true)`,
  );
  return calls.length > 0 ? `begin; select ${calls.join(", ")}` : "begin";
}

/** The settings as one statement with a parameter, for a pipeline's prelude (pipeline.ts). */
export function settingsStatement(settings: ReadonlyArray<readonly [string, string]>): Prelude {
  return {
    text: "select set_config(el->>0, el->>1, true) from json_array_elements($1::json) el",
    values: [JSON.stringify(settings)],
    // Prepared once per connection (run alone, the settings end with their implicit transaction).
    name: "attest_settings",
  };
}

function opening(client: pg.ClientBase, context: ActingContext): string {
  return openingSql(client, Object.entries(contextSettings(context)));
}

/**
 * A statement PostgreSQL parses and plans once per connection (withContext runs it under a name
 * of its own): for the frequent statements of a page, whose planning costs more than running them.
 */
export function prepared(text: string, values: unknown[]): pg.QueryConfig {
  return { name: `stmt:${createHash("sha1").update(text).digest("hex")}`, text, values };
}

/** Runs `fn` in one transaction with the context applied as transaction-local settings. */
export async function withContext<T>(
  pool: pg.Pool,
  context: ActingContext,
  fn: (client: pg.PoolClient) => Promise<T>,
): Promise<T> {
  const client = await pool.connect();
  const query = client.query;
  const send = (sql: string) => (query as (text: string) => Promise<unknown>).call(client, sql);
  let opened = false;
  // The transaction opens with the first statement: its `begin` and the context's settings go in
  // that statement's message (pipeline.ts), so opening costs no round trip of its own. A first
  // statement that cannot go so (several statements in one text, a streaming one, a callback, a
  // named one on its first use on the connection) is preceded by the opening as a message of its
  // own.
  const prelude = (): Prelude[] => {
    const settings = Object.entries(contextSettings(context));
    return [{ text: "begin", values: [] }, ...(settings.length > 0 ? [settingsStatement(settings)] : [])];
  };
  client.query = function (this: pg.PoolClient, ...args: unknown[]) {
    const [config, values] = args;
    // A statement as text or a config object (no callback, no submittable such as a cursor).
    const plain =
      args.length <= 2 &&
      typeof values !== "function" &&
      (typeof config === "string" ||
        (typeof config === "object" &&
          config !== null &&
          typeof (config as { submit?: unknown }).submit !== "function" &&
          typeof (config as pg.QueryConfig).text === "string"));
    if (!plain) {
      if (!opened) {
        opened = true;
        send(opening(this, context)).catch(() => {}); // a failed opening fails the statement after it
      }
      return (query as (...a: unknown[]) => unknown).apply(this, args);
    }
    const statement: pg.QueryConfig & { rowMode?: string } =
      typeof config === "string" ? { text: config } : { ...(config as pg.QueryConfig) };
    if (Array.isArray(values)) statement.values = values;
    // A named statement (prepared once per connection, planned once by PostgreSQL) runs under a
    // name of pipeline.ts's (statementName), so that it can open a later transaction too. Its
    // first use on a connection goes alone (after the opening), so that it is prepared next time.
    let ready = true;
    if (typeof statement.name === "string") ({ name: statement.name, ready } = statementName(this, statement.name));
    const run = () => (query as (c: pg.QueryConfig) => unknown).call(this, statement);
    if (opened) return run();
    opened = true;
    if (ready && !statement.text.includes(";")) return pipelinedQuery(this, prelude(), statement);
    send(opening(this, context)).catch(() => {}); // a failed opening fails the statement after it
    return run();
  } as typeof client.query;
  try {
    const result = await fn(client);
    if (opened) await send("commit");
    return result;
  } catch (error) {
    if (opened) await send("rollback").catch(() => {});
    throw error;
  } finally {
    client.query = query;
    client.release();
  }
}

/**
 * Runs one statement without parameters (values quoted with the client's escapeLiteral) in a
 * transaction of its own with the context applied: the opening, the statement and the commit go
 * as one message, so it costs one round trip.
 */
export async function queryInContext<R extends pg.QueryResultRow>(
  pool: pg.Pool,
  context: ActingContext,
  sql: (client: pg.ClientBase) => string,
): Promise<pg.QueryResult<R>> {
  const client = await pool.connect();
  try {
    const results = (await client.query(
      `${opening(client, context)}; ${sql(client)}; commit`,
    )) as unknown as pg.QueryResult<R>[];
    return results[results.length - 2];
  } catch (error) {
    await client.query("rollback").catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
