/**
 * A statement sent to PostgreSQL together with the statements that must run before it, as one
 * message of the extended protocol: Parse/Bind/Execute for each, then one Sync. One write and
 * one round trip where sending them one by one takes one each: on this kind of machine a write on
 * a loopback socket costs ~0.1–0.2 ms of CPU on each side, more than most of the statements.
 * - A GraphQL request's statement goes with the request's settings and credential check, in one
 *   implicit transaction committed at the Sync (so `set_config(…, true)` holds for the statement
 *   and ends with it); PostgreSQL skips the rest of the message after an error.
 * - The first statement of a transaction of withContext goes with its `begin` and settings.
 *
 * Built on node-postgres's own Query (its parsing of rows, errors and ready-for-query); only the
 * first messages it writes and the first results it reads are added here.
 */
import { createHash } from "node:crypto";
import pg from "pg";

interface Connection {
  stream: { cork?: () => void; uncork?: () => void };
  parse(config: { text: string; name?: string; types?: unknown[] }): void;
  bind(config: { portal?: string; statement?: string; values?: unknown[]; valueMapper?: unknown }): void;
  execute(config: { portal?: string; rows?: number }): void;
}

interface PgQueryInternals {
  submit(connection: Connection): Error | null | undefined;
  handleDataRow(msg: unknown): void;
  handleCommandComplete(msg: unknown, connection: Connection): void;
}

const prepareValue = (pg as unknown as { utils?: { prepareValue(v: unknown): unknown } }).utils?.prepareValue;

export interface Prelude {
  text: string;
  values: unknown[];
  /**
   * Prepared once per connection under this name, so that PostgreSQL parses and plans it once. A
   * named prelude statement must be harmless to run on its own: it runs so once, on its first use
   * on a connection, to be prepared.
   */
  name?: string;
  /**
   * With `name`: on its first use on a connection the statement is prepared with SQL `PREPARE`
   * (parsed and planned, not run), for a statement that may not run on its own (a credential
   * check without its settings). It must take no parameters.
   */
  prepareOnly?: boolean;
}

interface ParsedConnection {
  parsedStatements?: Record<string, string>;
}

/** Whether `p` is prepared on the connection under its name. */
const preparedOn = (connection: ParsedConnection | undefined, p: Prelude): p is Prelude & { name: string } =>
  p.name !== undefined && connection?.parsedStatements?.[p.name] === p.text;

const QueryBase = pg.Query as unknown as new (
  config: pg.QueryConfig & { rowMode?: string; queryMode?: string },
) => PgQueryInternals;

/** A node-postgres Query preceded, in the same message and transaction, by `prelude` (their rows are not kept). */
class PreludedQuery extends QueryBase {
  #prelude: Prelude[];
  #pending: number;

  constructor(config: pg.QueryConfig & { rowMode?: string }, prelude: Prelude[]) {
    super({ ...config, queryMode: "extended" });
    this.#prelude = prelude;
    this.#pending = prelude.length;
  }

  override submit(connection: Connection) {
    connection.stream.cork?.();
    try {
      for (const p of this.#prelude) {
        const named = preparedOn(connection as unknown as ParsedConnection, p);
        if (!named) connection.parse({ text: p.text, name: "", types: [] });
        connection.bind({ portal: "", statement: named ? p.name : "", values: p.values, valueMapper: prepareValue });
        connection.execute({ portal: "", rows: 0 });
      }
      return super.submit(connection);
    } finally {
      connection.stream.uncork?.();
    }
  }

  // The prelude's statements are executed without Describe: their rows (if any) come without a
  // description and are skipped, as is their CommandComplete.
  override handleDataRow(msg: unknown) {
    if (this.#pending > 0) return;
    super.handleDataRow(msg);
  }

  override handleCommandComplete(msg: unknown, connection: Connection) {
    if (this.#pending > 0) {
      this.#pending--;
      return;
    }
    super.handleCommandComplete(msg, connection);
  }
}

/** Names of the statements prepared for pipelines on each connection (at most MAX_PREPARED). */
const prepared = new WeakMap<pg.ClientBase, Set<string>>();
const MAX_PREPARED = 100;

/** Each query name's own name, within PostgreSQL's 63 bytes (the adaptor's names already take 63). */
const ownNames = new Map<string, string>();
function ownName(name: string): string {
  let own = ownNames.get(name);
  if (own === undefined) {
    own = `attest_${createHash("sha1").update(name).digest("hex")}`;
    if (ownNames.size >= 1000) ownNames.clear();
    ownNames.set(name, own);
  }
  return own;
}

/**
 * The name under which a named query of the request runs on `client`, and whether it is prepared
 * there already. A pipeline only uses a statement already prepared (the first use of a name on a
 * connection goes alone, so that node-postgres records the statement when PostgreSQL has parsed
 * it); past MAX_PREPARED names a query runs unnamed. The names are this module's own, so the
 * stock adaptor's cache of names is never touched.
 */
export function statementName(client: pg.ClientBase, name: string | undefined): { name?: string; ready: boolean } {
  if (!name) return { ready: true };
  let names = prepared.get(client);
  if (!names) {
    names = new Set();
    prepared.set(client, names);
  }
  const own = ownName(name);
  const parsed = (client as unknown as { connection?: { parsedStatements?: Record<string, string> } }).connection
    ?.parsedStatements;
  if (names.has(own) && parsed?.[own] !== undefined) return { name: own, ready: true };
  if (names.size >= MAX_PREPARED) return { ready: true }; // unnamed
  names.add(own);
  return { name: own, ready: false };
}

/** Runs `query` (unnamed, or named and prepared on `client` already) after `prelude` in one message and one transaction. */
export async function pipelinedQuery(
  client: pg.ClientBase,
  prelude: Prelude[],
  query: pg.QueryConfig & { rowMode?: string },
): Promise<pg.QueryResult> {
  // A named prelude statement's first use on the connection: prepared by node-postgres (which
  // records it once PostgreSQL has parsed it), by running it alone; or, `prepareOnly`, with PREPARE.
  const connection = (client as unknown as { connection?: ParsedConnection }).connection;
  const run = pg.Client.prototype.query as (config: pg.QueryConfig | string) => Promise<pg.QueryResult>;
  for (const [i, p] of prelude.entries()) {
    if (p.name === undefined || preparedOn(connection, p)) continue;
    if (p.prepareOnly) {
      // Prepared under its name without running it, after the statements before it (the settings:
      // the role it is parsed as) in a transaction of their own (a prepared statement outlives
      // it); recorded where node-postgres records the statements it parsed, which is where
      // preparedOn looks (and node-postgres would not parse it again under that name).
      await run.call(client, "begin");
      try {
        for (const before of prelude.slice(0, i)) {
          await run.call(client, { name: before.name, text: before.text, values: before.values });
        }
        await run.call(client, `prepare ${client.escapeIdentifier(p.name)} as ${p.text}`);
      } finally {
        await run.call(client, "rollback");
      }
      if (connection) {
        connection.parsedStatements ??= {};
        connection.parsedStatements[p.name] = p.text;
      }
    } else {
      await run.call(client, { name: p.name, text: p.text, values: p.values });
    }
  }
  return new Promise((resolve, reject) => {
    const submittable = new PreludedQuery(
      {
        ...query,
        callback: (error: Error | undefined, result: pg.QueryResult) => (error ? reject(error) : resolve(result)),
      } as pg.QueryConfig,
      prelude,
    );
    client.query(submittable as unknown as pg.QueryConfig);
  });
}
