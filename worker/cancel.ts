/**
 * Long statements of the worker's tasks (verifying a log of millions of entries takes tens of
 * seconds) must not hold up a shutdown: graphile-worker waits for running jobs, then aborts their
 * signal (gracefulShutdownAbortTimeout, 5 s). On that signal the running statement is cancelled
 * with PostgreSQL's cancel request (the backend's key, sent on a connection of its own: no
 * privilege is needed, unlike pg_cancel_backend, which a superuser's backend refuses to other
 * roles). The statement fails with 57014, the task with it, and graphile-worker puts the job back
 * in the queue for its next attempt.
 */
import pg from "pg";

/** Runs `text` on `client`; if `signal` aborts while it runs, PostgreSQL cancels it. */
export async function queryUntilAborted<R extends pg.QueryResultRow>(
  client: pg.PoolClient,
  signal: AbortSignal,
  text: string,
  values: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  signal.throwIfAborted();
  const onAbort = () => cancelRunningQuery(client);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await client.query<R>(text, values);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

/** node-postgres' own cancel (Client#cancel: not in its type declarations). */
interface Cancelling {
  cancel(client: pg.ClientBase, query: unknown): void;
  connection: { on(event: "error", listener: () => void): void };
}

function cancelRunningQuery(client: pg.PoolClient): void {
  const running = (client as unknown as { activeQuery?: unknown }).activeQuery;
  if (!running) return;
  const params = (client as unknown as { connectionParameters: pg.ClientConfig }).connectionParameters;
  const canceller = new pg.Client(params) as unknown as Cancelling;
  // The server closes this connection once it has the request; a failure only means no cancel.
  canceller.connection.on("error", () => {});
  canceller.cancel(client, running);
}
