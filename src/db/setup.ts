/**
 * Database setup: makes sure the database and Attest's roles exist, applies the committed
 * migrations, and works out how the server logs in as the authenticator.
 * Owns role naming and the "what a DBA must run" message; it never seeds data.
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Logger, migrate } from "graphile-migrate";
// graphile-migrate keeps its pool for 200 ms after a command and exits the process if that idle
// pool sees an error (e.g. the server restarting); release it as soon as migrating is done.
import { clearAllPools } from "graphile-migrate/dist/pgReal.js";
import { runMigrations as runWorkerMigrations, Logger as WorkerLogger } from "graphile-worker";
import pg from "pg";
import { guardSql } from "./guard.ts";

export interface DatabaseRoles {
  /** Owns every object and runs migrations (NOLOGIN when Attest creates it). */
  owner: string;
  /** LOGIN NOINHERIT: the server's pool logs in as it and switches to the visitor role. */
  authenticator: string;
  /** The signed-in user's role: everything it sees is decided by row-level security. */
  visitor: string;
  /** NOLOGIN group for DBAs: may read the `reporting` views and nothing else. */
  reporting: string;
  /**
   * NOLOGIN: owns the audit log and everything that writes, seals or proves it (handed over by
   * the DDL guard, which a superuser installs). No other role is a member of it, the owner
   * included, so no role but a superuser can write the log or change how it is written.
   */
  audit: string;
  /** NOLOGIN: the sealer's role. It may call the sealing functions and read the signing key, nothing else. */
  sealer: string;
}

export interface PreparedDatabase {
  databaseName: string;
  roles: DatabaseRoles;
  /** Connection used for migrations, the worker and seeding: acts as the owner role. */
  owner: pg.PoolConfig;
  /** The sealer's connection: the same login, acting as the sealer role. */
  sealer: pg.PoolConfig;
  /** The server's connection string (authenticator). */
  authUrl: string;
}

/** Raised when setup needs privileges the connecting role lacks; `sql` is what a DBA runs once. */
export class SetupRequiredError extends Error {
  readonly sql: string;
  constructor(message: string, sql: string) {
    super(message);
    this.sql = sql;
  }
}

const quietWorkerLogger = new WorkerLogger(() => () => {});

export const migrationsFolder = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../migrations");

export function databaseNameOf(url: string): string {
  return decodeURIComponent(new URL(url).pathname.slice(1));
}

export function roleNames(prefix: string): DatabaseRoles {
  return {
    owner: `${prefix}_owner`,
    authenticator: `${prefix}_authenticator`,
    visitor: `${prefix}_visitor`,
    reporting: `${prefix}_reporting`,
    audit: `${prefix}_audit`,
    sealer: `${prefix}_sealer`,
  };
}

/** Role names derive from the database name, so two installs can share one cluster. */
export function rolePrefixFor(databaseName: string): string {
  const cleaned = databaseName
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, "_")
    .replace(/^([0-9])/, "_$1");
  return cleaned.slice(0, 41) || "attest";
}

export function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${encodeURIComponent(database)}`;
  return u.toString();
}

function withCredentials(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = encodeURIComponent(user);
  u.password = encodeURIComponent(password);
  return u.toString();
}

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const literal = (value: string) => `'${value.replaceAll("'", "''")}'`;

async function withClient<T>(config: pg.ClientConfig, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(config);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

interface Inspection {
  currentUser: string;
  superuser: boolean;
  createRole: boolean;
  createDb: boolean;
  existingRoles: Set<string>;
  databaseExists: boolean;
}

async function inspect(adminUrl: string, databaseName: string, roles: DatabaseRoles): Promise<Inspection> {
  const query = async (client: pg.Client, databaseExists: boolean): Promise<Inspection> => {
    const { rows } = await client.query(
      `select current_user as current_user, r.rolsuper, r.rolcreaterole, r.rolcreatedb,
              array(select rolname::text from pg_roles where rolname = any($1::text[])) as existing,
              exists (select 1 from pg_database where datname = $2) as database_exists
       from pg_roles r where r.rolname = current_user`,
      [Object.values(roles), databaseName],
    );
    const row = rows[0];
    return {
      currentUser: row.current_user,
      superuser: row.rolsuper,
      createRole: row.rolcreaterole,
      createDb: row.rolcreatedb,
      existingRoles: new Set(row.existing as string[]),
      databaseExists: databaseExists || row.database_exists,
    };
  };
  try {
    return await withClient({ connectionString: adminUrl }, (client) => query(client, true));
  } catch (error) {
    if ((error as { code?: string }).code !== "3D000") throw error; // 3D000: database does not exist
    return await withClient({ connectionString: withDatabase(adminUrl, "postgres") }, (client) => query(client, false));
  }
}

/** What `<db>_owner` needs in a database created beforehand by another role (the migrations create schemas and extensions in `public`). */
function ownerCreateGrants(databaseName: string, roles: DatabaseRoles) {
  return {
    database: `GRANT CREATE ON DATABASE ${ident(databaseName)} TO ${ident(roles.owner)};`,
    schema: `GRANT CREATE ON SCHEMA public TO ${ident(roles.owner)};`,
    connect: `GRANT CONNECT ON DATABASE ${ident(databaseName)} TO ${ident(roles.authenticator)}, ${ident(roles.reporting)};`,
  };
}

/** The SQL a DBA runs once to create what is missing, for a login that may not create it itself. */
function dbaScript(databaseName: string, roles: DatabaseRoles, missing: Inspection): { sql: string; env: string } {
  const ownerPassword = randomBytes(18).toString("base64url");
  const authPassword = randomBytes(18).toString("base64url");
  const lines = [
    missing.databaseExists
      ? `-- Run once as a PostgreSQL superuser, connected to database ${databaseName}:`
      : "-- Run once as a PostgreSQL superuser:",
  ];
  if (!missing.existingRoles.has(roles.owner))
    lines.push(`CREATE ROLE ${ident(roles.owner)} LOGIN PASSWORD ${literal(ownerPassword)};`);
  if (!missing.existingRoles.has(roles.visitor)) lines.push(`CREATE ROLE ${ident(roles.visitor)} NOLOGIN;`);
  if (!missing.existingRoles.has(roles.reporting)) lines.push(`CREATE ROLE ${ident(roles.reporting)} NOLOGIN;`);
  if (!missing.existingRoles.has(roles.audit)) lines.push(`CREATE ROLE ${ident(roles.audit)} NOLOGIN;`);
  if (!missing.existingRoles.has(roles.sealer)) {
    lines.push(`CREATE ROLE ${ident(roles.sealer)} NOLOGIN;`);
    lines.push(`GRANT ${ident(roles.sealer)} TO ${ident(roles.owner)};`);
  }
  if (!missing.existingRoles.has(roles.authenticator)) {
    lines.push(`CREATE ROLE ${ident(roles.authenticator)} LOGIN NOINHERIT PASSWORD ${literal(authPassword)};`);
    lines.push(`GRANT ${ident(roles.visitor)} TO ${ident(roles.authenticator)};`);
  }
  if (missing.databaseExists && !missing.existingRoles.has(roles.owner)) {
    // A database created beforehand is not the new owner role's: it must be let create in it.
    const grants = ownerCreateGrants(databaseName, roles);
    lines.push(grants.database, grants.schema, grants.connect);
  }
  if (!missing.databaseExists) {
    lines.push(`CREATE DATABASE ${ident(databaseName)} OWNER ${ident(roles.owner)};`);
    lines.push(`REVOKE ALL ON DATABASE ${ident(databaseName)} FROM PUBLIC;`);
    lines.push(
      `GRANT CONNECT ON DATABASE ${ident(databaseName)} TO ${ident(roles.authenticator)}, ${ident(roles.reporting)};`,
    );
  }
  lines.push(
    "-- Then, after the first `npm run migrate`, protect the audit log's definition from its owner:",
    "--   npm run --silent guard-sql | psql <superuser connection to this database>",
  );
  const env = [
    `DATABASE_URL=postgres://${roles.owner}:${missing.existingRoles.has(roles.owner) ? "<owner password>" : ownerPassword}@<host>:<port>/${databaseName}`,
    `AUTH_DATABASE_URL=postgres://${roles.authenticator}:${missing.existingRoles.has(roles.authenticator) ? "<authenticator password>" : authPassword}@<host>:<port>/${databaseName}`,
  ].join("\n");
  return { sql: lines.join("\n"), env };
}

async function createMissing(adminUrl: string, databaseName: string, roles: DatabaseRoles, found: Inspection) {
  await withClient({ connectionString: withDatabase(adminUrl, "postgres") }, async (client) => {
    const create = async (role: string, options: string) => {
      if (found.existingRoles.has(role)) return;
      try {
        await client.query(`create role ${ident(role)} ${options}`);
      } catch (error) {
        if ((error as { code?: string }).code !== "42710") throw error; // created meanwhile by another process
      }
    };
    await create(roles.owner, "nologin");
    await create(roles.visitor, "nologin");
    await create(roles.reporting, "nologin");
    await create(roles.audit, "nologin");
    await create(roles.sealer, "nologin");
    await create(roles.authenticator, "login noinherit");
    await client.query(`grant ${ident(roles.visitor)} to ${ident(roles.authenticator)}`);
    // The owner's login switches to the sealer role for sealing (which can do nothing else).
    await client.query(`grant ${ident(roles.sealer)} to ${ident(roles.owner)}`);
    if (!found.superuser) {
      // A CREATEROLE login must be a member of the owner role to migrate as it.
      await client.query(`grant ${ident(roles.owner)} to current_user`);
    }
    if (!found.databaseExists) {
      await client.query(`create database ${ident(databaseName)} owner ${ident(roles.owner)}`);
      await client.query(`revoke all on database ${ident(databaseName)} from public`);
      await client.query(
        `grant connect on database ${ident(databaseName)} to ${ident(roles.authenticator)}, ${ident(roles.reporting)}`,
      );
    }
  });
}

export async function applyMigrations(
  owner: pg.PoolConfig & { connectionString: string },
  roles: DatabaseRoles,
  log: (message: string) => void,
) {
  const role = (owner.options ?? "").match(/-c role=(\S+)/)?.[1];
  await migrate({
    logger: new Logger(() => (_level, message) => log(message)),
    connectionString: owner.connectionString,
    migrationsFolder,
    databaseOwner: roles.owner,
    ...(role ? { pgSettings: { role } } : {}),
    placeholders: {
      ":DATABASE_AUTHENTICATOR": roles.authenticator,
      ":DATABASE_VISITOR": roles.visitor,
      ":DATABASE_REPORTING": roles.reporting,
      ":DATABASE_SEALER": roles.sealer,
    },
  });
  clearAllPools();
}

async function authenticatorUrl(adminUrl: string, owner: pg.PoolConfig, roles: DatabaseRoles): Promise<string> {
  const stored = await withClient(owner, async (client) => {
    const { rows } = await client.query("select password from app_private.db_credentials where role_name = $1", [
      roles.authenticator,
    ]);
    return rows[0]?.password as string | undefined;
  });
  if (stored) return withCredentials(adminUrl, roles.authenticator, stored);

  const password = randomBytes(24).toString("base64url");
  try {
    await withClient({ connectionString: adminUrl }, (client) =>
      client.query(`alter role ${ident(roles.authenticator)} password ${literal(password)}`),
    );
  } catch (error) {
    throw new SetupRequiredError(
      `Attest cannot set a password for the ${roles.authenticator} role (${(error as Error).message}).`,
      `-- Set a password for the authenticator and tell Attest about it:\nALTER ROLE ${ident(roles.authenticator)} PASSWORD '<choose one>';\n-- then start Attest with AUTH_DATABASE_URL=postgres://${roles.authenticator}:<that password>@<host>:<port>/<database>`,
    );
  }
  await withClient(owner, (client) =>
    client.query(
      "insert into app_private.db_credentials (role_name, password) values ($1, $2) on conflict (role_name) do update set password = excluded.password",
      [roles.authenticator, password],
    ),
  );
  return withCredentials(adminUrl, roles.authenticator, password);
}

/** What exists, after creating the roles and the database that are missing (when this login may). */
async function createWhatIsMissing(
  options: { adminUrl: string; log: (message: string) => void },
  databaseName: string,
  roles: DatabaseRoles,
): Promise<Inspection> {
  const found = await inspect(options.adminUrl, databaseName, roles);
  const missingRoles = Object.values(roles).filter((r) => !found.existingRoles.has(r));
  if (missingRoles.length > 0 || !found.databaseExists) {
    const mayCreate = found.superuser || (found.createRole && (found.databaseExists || found.createDb));
    if (!mayCreate) {
      const { sql, env } = dbaScript(databaseName, roles, found);
      throw new SetupRequiredError(
        `The PostgreSQL role "${found.currentUser}" may not create ${[
          ...missingRoles.map((r) => `role ${r}`),
          ...(found.databaseExists ? [] : [`database ${databaseName}`]),
        ].join(", ")}. A DBA must run the SQL below once; then start Attest with:\n${env}`,
        sql,
      );
    }
    options.log(
      `Creating ${[...missingRoles, ...(found.databaseExists ? [] : [`database ${databaseName}`])].join(", ")}`,
    );
    await createMissing(options.adminUrl, databaseName, roles, found);
  }

  return found;
}

/**
 * A database created beforehand by a DBA (`CREATE DATABASE attest` as postgres) is not the owner
 * role's: the migrations, run as that role, could create neither their schemas nor the extensions
 * in `public` ("permission denied for database"). A login that may (a superuser, the database's
 * owner) grants what they need; any other is given the GRANTs to ask a DBA for.
 */
async function letOwnerCreate(
  client: pg.Client,
  databaseName: string,
  roles: DatabaseRoles,
  found: Inspection,
  log: (message: string) => void,
) {
  const wanted = ownerCreateGrants(databaseName, roles);
  const missingGrants = () =>
    client
      .query<{ database: boolean; schema: boolean }>(
        `select has_database_privilege($1, current_database(), 'CREATE') as database,
                not exists (select 1 from pg_namespace where nspname = 'public')
                  or has_schema_privilege($1, 'public', 'CREATE') as schema`,
        [roles.owner],
      )
      .then(({ rows }) => [...(rows[0].database ? [] : [wanted.database]), ...(rows[0].schema ? [] : [wanted.schema])]);
  const missing = await missingGrants();
  if (missing.length === 0) return;
  const grants = [...missing, wanted.connect];
  // A login without the grant option fails (42501) or is only warned ("no privileges were
  // granted"): what it granted is read back either way.
  await client.query("begin");
  for (const grant of grants) {
    try {
      await client.query("savepoint g");
      await client.query(grant);
    } catch (error) {
      if ((error as { code?: string }).code !== "42501") throw error;
      await client.query("rollback to savepoint g");
    }
  }
  await client.query("commit");
  if ((await missingGrants()).length > 0) {
    throw new SetupRequiredError(
      `Database ${databaseName} exists, but ${roles.owner} may not create Attest's schemas in it and the PostgreSQL role "${found.currentUser}" may not grant that. A DBA must run the SQL below once; then start Attest again.`,
      `-- Run once as a PostgreSQL superuser (or the database's owner), connected to database ${databaseName}:\n${grants.join("\n")}`,
    );
  }
  log(`Database ${databaseName} was created by another role: granted ${roles.owner} what the migrations need`);
}

/**
 * Runs `step` again (up to five times) when it failed because another process created the same
 * role or database at the same moment: duplicate_object, duplicate_database, a unique violation in
 * the catalog, or "tuple concurrently updated" (two GRANTs at once).
 */
async function againIfRaced<T>(step: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await step();
    } catch (error) {
      const { code, message } = error as { code?: string; message?: string };
      const raced =
        code === "42710" ||
        code === "42P04" ||
        code === "23505" ||
        (code === "XX000" && /concurrently updated/.test(message ?? ""));
      if (!raced || attempt === 5) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
    }
  }
}

/** The advisory lock (in the database being set up) that one Attest holds while it migrates and sets it up. */
const SETUP_LOCK = "hashtext('attest:setup')";

/**
 * Runs `fn` while holding the setup lock, so that Attest processes started together (a second
 * replica, `npm run migrate` beside `npm start`) migrate and set up a database one after the
 * other: the later one waits, then finds the work done. Without it the second failed to start
 * (graphile-migrate's own lock is not waited for), and two could each set a different password
 * for the authenticator role and keep the other's.
 */
async function withSetupLock<T>(
  adminUrl: string,
  log: (message: string) => void,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl, statement_timeout: 0 });
  client.on("error", () => {}); // a lost connection fails the lock's query or ends the lock
  await client.connect();
  try {
    const { rows } = await client.query(`select pg_try_advisory_lock(${SETUP_LOCK}) as got`);
    if (!rows[0].got) {
      log(`Another Attest is setting up database ${databaseNameOf(adminUrl)}: waiting for it to finish`);
      await client.query(`select pg_advisory_lock(${SETUP_LOCK})`);
    }
    return await fn(client);
  } finally {
    await client.end().catch(() => {}); // ending the session releases the lock
  }
}

export async function prepareDatabase(options: {
  adminUrl: string;
  authUrl?: string;
  rolePrefix?: string;
  log: (message: string) => void;
}): Promise<PreparedDatabase> {
  const databaseName = databaseNameOf(options.adminUrl);
  const roles = roleNames(options.rolePrefix ?? rolePrefixFor(databaseName));
  // Another Attest starting at the same moment may create a role or the database first: then
  // this one looks again and finds it there.
  const found = await againIfRaced(() => createWhatIsMissing(options, databaseName, roles));

  const actsAsOwner =
    found.currentUser === roles.owner
      ? true
      : await withClient({ connectionString: options.adminUrl }, async (client) => {
          const { rows } = await client.query("select pg_has_role(current_user, $1, 'MEMBER') as member", [
            roles.owner,
          ]);
          return rows[0].member as boolean;
        });
  if (!actsAsOwner) {
    throw new SetupRequiredError(
      `The PostgreSQL role "${found.currentUser}" cannot act as ${roles.owner}, which owns Attest's schema.`,
      `GRANT ${ident(roles.owner)} TO ${ident(found.currentUser)};\n-- or set DATABASE_URL to log in as ${roles.owner}`,
    );
  }
  const owner: pg.PoolConfig & { connectionString: string } = {
    connectionString: options.adminUrl,
    ...(found.currentUser === roles.owner ? {} : { options: `-c role=${roles.owner}` }),
  };

  return await withSetupLock(options.adminUrl, options.log, async (lockClient) => {
    await letOwnerCreate(lockClient, databaseName, roles, found, options.log);
    await applyMigrations(owner, roles, options.log);
    // graphile-worker's own schema: database triggers add jobs (e.g. building a requested pack).
    const workerPool = new pg.Pool({ ...owner, max: 1 });
    workerPool.on("error", () => {});
    workerPool.on("connect", (client) => client.on("error", () => {}));
    try {
      await runWorkerMigrations({ pgPool: workerPool, logger: quietWorkerLogger });
    } finally {
      await workerPool.end();
    }
    if (found.superuser) {
      await withClient({ connectionString: options.adminUrl }, (client) => client.query(guardSql));
    } else {
      options.log(
        "Note: the audit log's DDL guard needs a superuser. Ask a DBA to run `npm run --silent guard-sql` into psql as a superuser on this database (see README).",
      );
    }
    const authUrl = options.authUrl ?? (await authenticatorUrl(options.adminUrl, owner, roles));
    const sealer: pg.PoolConfig = { connectionString: options.adminUrl, options: `-c role=${roles.sealer}` };
    return { databaseName, roles, owner, sealer, authUrl };
  });
}
