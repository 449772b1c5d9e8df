/**
 * A running Attest HTTP server (pages, evidence endpoints, GraphQL) on a free port, over a test
 * database, plus the client calls a browser or an integrator would make.
 */
import type http from "node:http";
import pg from "pg";
import { createGraphQL } from "../../src/graphql/index.ts";
import { createApp, startServer } from "../../src/web/server.ts";
import type { TestDatabase } from "./db.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

export interface TestServer {
  url: string;
  /** Signs in through POST /login; returns the session cookie ("attest_session=…"). */
  signIn(email: string, password?: string): Promise<string>;
  /** A GraphQL POST as a browser page would send it (same origin, JSON). */
  gql<T = Record<string, unknown>>(
    query: string,
    options?: {
      variables?: Record<string, unknown>;
      cookie?: string;
      token?: string;
      tenant?: string;
      origin?: string;
    },
  ): Promise<GqlResult<T>>;
  close(): Promise<void>;
}

export interface GqlResult<T> {
  status: number;
  requestId: string | null;
  data: T | null | undefined;
  errors?: Array<{ message: string; extensions?: { code?: string } }>;
}

export async function startTestServer(
  t: TestDatabase,
  options: { maxUploadBytes?: number; uploadDir?: string } = {},
): Promise<TestServer> {
  const app = createApp({
    authPool: t.pools.auth,
    visitorRole: t.db.roles.visitor,
    log: quiet,
    maxUploadBytes: options.maxUploadBytes ?? 1024 * 1024,
    uploadDir: options.uploadDir,
    signInSleep: async () => {},
  });
  const graphql = createGraphQL({ authPool: t.pools.auth, visitorRole: t.db.roles.visitor, log: quiet });
  const running = await startServer(app, "127.0.0.1", 0, (server: http.Server) => graphql.addTo(app, server));
  const url = running.url;
  return {
    url,
    async signIn(email, password = "attest-demo") {
      const response = await fetch(`${url}/login`, {
        method: "POST",
        redirect: "manual",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Origin: url },
        body: new URLSearchParams({ email, password }),
      });
      const cookie = response.headers.getSetCookie().find((c) => c.startsWith("attest_session="));
      if (response.status !== 302 || !cookie) throw new Error(`sign-in of ${email} failed: ${response.status}`);
      return cookie.split(";")[0];
    },
    async gql(query, options = {}) {
      const headers: Record<string, string> = { "Content-Type": "application/json" };
      if (options.cookie) {
        headers.Cookie = options.cookie;
        headers.Origin = options.origin ?? url;
      }
      if (options.token) headers.Authorization = `Bearer ${options.token}`;
      if (options.tenant) headers["X-Tenant"] = options.tenant;
      const response = await fetch(`${url}/graphql`, {
        method: "POST",
        headers,
        body: JSON.stringify({ query, variables: options.variables }),
      });
      const body = (await response.json()) as { data?: unknown; errors?: GqlResult<unknown>["errors"] };
      return {
        status: response.status,
        requestId: response.headers.get("x-request-id"),
        data: body.data as never,
        errors: body.errors,
      };
    },
    async close() {
      await running.close();
      await graphql.release();
    },
  };
}

/**
 * A server whose pool has one connection (`pool`): every statement of its requests runs there, so
 * the statements it prepared are those listed in pg_prepared_statements on `pool`. Closing the
 * server ends the pool.
 */
export type OneConnectionServer = TestServer & { pool: pg.Pool };

export async function startOneConnectionServer(t: TestDatabase): Promise<OneConnectionServer> {
  const pool = new pg.Pool({ ...t.pools.auth.options, max: 1 });
  // pool.end() returns before its connection has closed; dropping the test database right after
  // ends that connection with an error, which an unhandled pool would throw (as db.ts's `su`).
  pool.on("error", () => {});
  const web = await startTestServer({ ...t, pools: { ...t.pools, auth: pool } });
  return {
    ...web,
    pool,
    async close() {
      await web.close();
      await pool.end();
    },
  };
}
