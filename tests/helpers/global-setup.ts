/**
 * Starts one embedded PostgreSQL 18 for the whole test run (in a temporary directory, on a free
 * port) and removes it afterwards. The PostgreSQL 15 service is used as it is.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres } from "../../src/db/embedded.ts";
import { freePort } from "./net.ts";

declare module "vitest" {
  export interface ProvidedContext {
    embeddedAdminUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "attest-test-pg18-"));
  await fs.chmod(dataDir, 0o755);
  const cluster = await startEmbeddedPostgres({ dataDir, port: await freePort(), log: () => {} });
  project.provide("embeddedAdminUrl", cluster.url("postgres"));
  return async () => {
    await cluster.stop();
    await fs.rm(dataDir, { recursive: true, force: true });
  };
}
