/**
 * `npm run seed`: seeds the demo workspace into DATABASE_URL (or the embedded PostgreSQL).
 * Does nothing when the `demo` tenant already exists.
 */
import { runDatabaseCli } from "./cli.ts";
import { createPools } from "./pools.ts";
import { seedDemoWorkspace } from "./seed.ts";

await runDatabaseCli("seed", async (db, log) => {
  const pools = createPools(db, log);
  try {
    const seeded = await seedDemoWorkspace({
      owner: pools.owner,
      auth: pools.auth,
      visitorRole: db.roles.visitor,
      log: (m) => log.info(m),
    });
    if (!seeded) log.info("The demo workspace already exists; nothing to do");
  } finally {
    await pools.end();
  }
});
