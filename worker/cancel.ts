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
  if (signal.aborted) throw stopped();
  let running = true;
  const onAbort = () => sendCancel(client as unknown as BackendKey, () => running);
  signal.addEventListener("abort", onAbort, { once: true });
  try {
    return await client.query<R>(text, values);
  } catch (error) {
    if (signal.aborted && (error as { code?: string }).code === "57014") throw stopped();
    throw error;
  } finally {
    running = false;
    signal.removeEventListener("abort", onAbort);
  }
}

/** A task stopped by a shutdown, expected: one line in the log, not a stack. */
function stopped(): Error {
  const error = new Error("stopped by the shutdown; it runs again at the next start");
  error.stack = undefined;
  return error;
}

/** What node-postgres keeps of its backend (not in its type declarations). */
interface BackendKey {
  processID: number;
  secretKey: number;
  connectionParameters: { host: string; port: number };
}
interface CancelConnection {
  connect(port: number | string, host?: string): void;
  cancel(processID: number, secretKey: number): void;
  on(event: "connect" | "error", listener: () => void): void;
}

/**
 * Sends the backend's cancel request on a connection of its own (node-postgres' Connection), if
 * the statement still runs when that connection is made. The server closes the connection once
 * it has the request; a failure to connect only means that the statement runs to its end.
 */
function sendCancel(backend: BackendKey, stillRunning: () => boolean): void {
  const { processID, secretKey, connectionParameters } = backend;
  const { host, port } = connectionParameters;
  const connection = new pg.Connection() as unknown as CancelConnection;
  connection.on("error", () => {});
  connection.on("connect", () => {
    if (stillRunning()) connection.cancel(processID, secretKey);
  });
  if (host.startsWith("/")) connection.connect(`${host}/.s.PGSQL.${port}`);
  else connection.connect(port, host);
}
