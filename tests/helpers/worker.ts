/**
 * The worker in tests: its jobs run once, as `npm start`'s worker runs them (Attest's task list
 * and worker preset, so that every job it ran is settled when it returns), with webhook settings
 * that keep a test quick.
 */
import { runOnce } from "graphile-worker";
import type pg from "pg";
import { taskList, workerPreset } from "../../worker/index.ts";

export const TEST_WEBHOOKS = { allowPrivate: false, timeoutMs: 1000, maxFailures: 10, maxResponseBytes: 1024 };

/** Runs every job that is due, once, over `ownerPool` (the owner role, as the worker). */
export function runJobsOnce(ownerPool: pg.Pool): Promise<void> {
  return runOnce({ pgPool: ownerPool, preset: workerPreset, taskList: taskList(ownerPool, TEST_WEBHOOKS) });
}
