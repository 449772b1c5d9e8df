/**
 * Test databases: every test file creates its own database (with its own roles) on each
 * PostgreSQL server, migrates it, optionally seeds it, and drops database and roles afterwards.
 * Tests then connect as real roles over real connections.
 */
import { createHash, randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";
import { withContext } from "../../src/db/context.ts";
import { createPools, type Pools } from "../../src/db/pools.ts";
import { seedDemoWorkspace } from "../../src/db/seed.ts";
import { type PreparedDatabase, prepareDatabase, withDatabase } from "../../src/db/setup.ts";
import type { ServerInfo } from "./global-setup.ts";
import { sealAll } from "./seal.ts";

export type Server = ServerInfo;

/**
 * Every PostgreSQL server of this run (started or checked by global-setup.ts): the embedded
 * PostgreSQL 15 and 18, and one per URL in ATTEST_TEST_PG_URL / ATTEST_TEST_PG_URLS.
 */
export function servers(): Server[] {
  return inject("testServers");
}

/** The one server for tests that need only one (browser tests): PostgreSQL 18, as `npm start` runs. */
export function mainServer(): Server {
  const all = servers();
  return all.find((s) => s.embedded && s.major === 18) ?? all.find((s) => s.major === 18) ?? all[all.length - 1];
}

/**
 * The stand-in for "an existing PostgreSQL a user points DATABASE_URL at": the first external
 * server (ATTEST_TEST_PG_URL, as .ci/run sets), else the oldest embedded one.
 */
export function existingServer(): Server {
  const all = servers();
  return all.find((s) => !s.embedded) ?? [...all].sort((a, b) => a.major - b.major)[0];
}

export interface TestDatabase {
  name: string;
  /** Superuser URL of this test database. */
  superUrl: string;
  db: PreparedDatabase;
  pools: Pools;
  /** A superuser pool on this database (for tampering and inspection). */
  superuser: pg.Pool;
  drop(): Promise<void>;
}

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

export async function createTestDatabase(server: Server, options: { seed?: boolean } = {}): Promise<TestDatabase> {
  const name = `attest_test_${randomBytes(5).toString("hex")}`;
  const superUrl = withDatabase(server.adminUrl, name);
  /** Drops this test's database and roles (also when setting it up failed half-way). */
  const dropAll = async () => {
    const admin = new pg.Client({ connectionString: server.adminUrl });
    await admin.connect();
    try {
      await admin.query(`drop database if exists "${name}" with (force)`);
      const extra = await admin.query<{ rolname: string }>("select rolname from pg_roles where rolname like $1", [
        `${name}\\_%`,
      ]);
      for (const { rolname } of extra.rows) await admin.query(`drop role if exists "${rolname}"`);
    } finally {
      await admin.end();
    }
  };
  let pools: Pools | undefined;
  let superuser: pg.Pool | undefined;
  try {
    const db = await prepareDatabase({ adminUrl: superUrl, log: () => {} });
    const ready = createPools(db, quiet, { owner: 4, auth: 4 });
    pools = ready;
    const su = new pg.Pool({ connectionString: superUrl, max: 4 });
    superuser = su;
    su.on("error", () => {}); // idle connections end when the test database is dropped
    if (options.seed) {
      await seedDemoWorkspace({ owner: ready.owner, auth: ready.auth, visitorRole: db.roles.visitor, log: () => {} });
      await sealAll(ready.owner); // as the worker's sealer would, moments after
    }
    return {
      name,
      superUrl,
      db,
      pools: ready,
      superuser: su,
      async drop() {
        await ready.end();
        await su.end();
        await dropAll();
      },
    };
  } catch (error) {
    // A failed migration or seed leaves nothing behind.
    await pools?.end().catch(() => {});
    await superuser?.end().catch(() => {});
    await dropAll().catch(() => {});
    throw error;
  }
}

/** Creates a login role (dropped with the database) that is a member of `memberOf`. */
export async function createLogin(t: TestDatabase, suffix: string, memberOf?: string): Promise<string> {
  const role = `${t.name}_${suffix}`;
  const password = randomBytes(12).toString("hex");
  await t.superuser.query(
    `create role "${role}" login password '${password}'${memberOf ? ` in role "${memberOf}"` : ""}`,
  );
  const url = new URL(t.superUrl);
  url.username = role;
  url.password = password;
  return url.toString();
}

export interface Ids {
  tenants: Record<string, string>;
  users: Record<string, string>;
}

export async function ids(t: TestDatabase): Promise<Ids> {
  const tenants = await t.superuser.query<{ slug: string; id: string }>("select slug, id from app_public.tenants");
  const users = await t.superuser.query<{ email: string; id: string }>("select email, id from app_public.users");
  return {
    tenants: Object.fromEntries(tenants.rows.map((r) => [r.slug, r.id])),
    users: Object.fromEntries(users.rows.map((r) => [r.email, r.id])),
  };
}

/** A live session for `email`; returns the cookie secret the server would hold. */
export async function sessionFor(t: TestDatabase, email: string): Promise<string> {
  const token = randomBytes(24).toString("base64url");
  await t.superuser.query(
    "insert into app_private.sessions (token_hash, user_id) select $1, id from app_public.users where email = $2",
    [createHash("sha256").update(token).digest(), email],
  );
  return token;
}

/**
 * Runs `fn` as the signed-in user `email` in `tenantSlug`, through the authenticator pool
 * switching to the visitor role, exactly as the server does.
 */
export async function asUser<T>(
  t: TestDatabase,
  email: string,
  tenantSlug: string,
  fn: (client: pg.PoolClient) => Promise<T>,
  extra: { requestId?: string; ip?: string; userAgent?: string; surface?: "web" | "graphql" } = {},
): Promise<T> {
  const token = await sessionFor(t, email);
  const { rows } = await t.superuser.query("select id from app_public.tenants where slug = $1", [tenantSlug]);
  return withContext(
    t.pools.auth,
    {
      role: t.db.roles.visitor,
      sessionToken: token,
      tenant: rows[0]?.id,
      surface: extra.surface ?? "web",
      requestId: extra.requestId,
      ip: extra.ip,
      userAgent: extra.userAgent,
    },
    fn,
  );
}

/** The SQLSTATE of a failed promise, or "ok". */
export async function sqlState(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "ok";
  } catch (error) {
    return (error as { code?: string }).code ?? `no code: ${(error as Error).message}`;
  }
}
