/**
 * Connection pools: the owner pool (worker, seeding), the sealer pool (sealing only) and the
 * authenticator pool (the server).
 * Owns pool sizes, the statement timeout and error logging for idle clients.
 */
import pg from "pg";
import { defaultServerPoolSize } from "../config.ts";
import type { Logger } from "../log.ts";
import type { PreparedDatabase } from "./setup.ts";

export interface Pools {
  owner: pg.Pool;
  auth: pg.Pool;
  sealer: pg.Pool;
  end(): Promise<void>;
}

export function createPools(
  db: PreparedDatabase,
  log: Logger,
  sizes = { owner: 5, auth: defaultServerPoolSize() },
): Pools {
  // No JIT compilation on any connection. The server's statements are short keyset reads and
  // single-row writes; the worker's are sealing and naming rounds, packs and jobs. On a large log
  // the planner's cost estimates pass jit_above_cost, and compiling then takes longer than the
  // query: tens of milliseconds on every such request, ~0.4 s of a 50,000-entry sealing round.
  const noJit = (options?: string) => [options, "-c jit=off"].filter(Boolean).join(" ");
  const owner = new pg.Pool({
    ...db.owner,
    options: noJit(db.owner.options),
    max: sizes.owner,
    application_name: "attest-owner",
  });
  const sealer = new pg.Pool({
    ...db.sealer,
    options: noJit(db.sealer.options),
    max: 1,
    application_name: "attest-sealer",
  });
  // The server's connections stay open between requests: a new backend plans every statement
  // and compiles every PL/pgSQL function again (30-50 ms more for the first request of each kind
  // of Audit Log read on the 10M-entry bench), and pg's default closes a connection after 10 s
  // idle. Two are kept whatever the pause; the others a minute after a burst.
  const auth = new pg.Pool({
    connectionString: db.authUrl,
    max: sizes.auth,
    min: Math.min(2, sizes.auth),
    idleTimeoutMillis: 60_000,
    application_name: "attest-server",
    statement_timeout: 15_000,
    options: noJit(),
  });
  for (const [name, pool] of [
    ["owner", owner],
    ["auth", auth],
    ["sealer", sealer],
  ] as const) {
    pool.on("error", (error) => log.warn(`idle ${name} database connection failed`, { error: error.message }));
    pool.on("connect", (client) =>
      client.on("error", (error) => log.warn(`${name} database connection failed`, { error: error.message })),
    );
  }
  return {
    owner,
    auth,
    sealer,
    end: async () => {
      await Promise.all([owner.end(), auth.end(), sealer.end()]);
    },
  };
}
