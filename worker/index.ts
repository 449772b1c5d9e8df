/**
 * The background worker: a graphile-worker runner inside the Attest process, and the audit
 * sealer beside it. Owns the task list and the schedule; jobs are added by the database
 * (triggers) or by cron.
 * It must not decide who may see what: tasks run as the owner role and write through the
 * same audited tables as everyone else.
 */
import { type Runner, run, type TaskList, Logger as WorkerLogger } from "graphile-worker";
import type pg from "pg";
import { startSealer } from "../src/audit/sealer.ts";
import type { Logger } from "../src/log.ts";
import { workerLiveness } from "./liveness.ts";
import { buildEvidencePackTask } from "./tasks/build-evidence-pack.ts";
import { closeSignInBursts } from "./tasks/close-sign-in-bursts.ts";
import { deliverWebhookTask, type WebhookWorkerSettings } from "./tasks/deliver-webhook.ts";
import { verifyAuditChain } from "./tasks/verify-audit-chain.ts";
import { verifyAuditChains } from "./tasks/verify-audit-chains.ts";

export function taskList(ownerPool: pg.Pool, webhooks: WebhookWorkerSettings): TaskList {
  return {
    verify_audit_chains: verifyAuditChains,
    verify_audit_chain: verifyAuditChain,
    build_evidence_pack: buildEvidencePackTask(ownerPool),
    deliver_webhook: deliverWebhookTask(ownerPool, webhooks),
    close_sign_in_bursts: closeSignInBursts,
  };
}

/**
 * Chain verification daily at 03:15 UTC (a missed run, process down, is caught up once within
 * 12 hours); ended bursts of failed sign-ins are recorded every minute.
 */
export const crontab = "15 3 * * * verify_audit_chains ?fill=12h\n* * * * * close_sign_in_bursts\n";

/**
 * graphile-worker marks a job done or failed after its task returns, without waiting; only its
 * batched form (a delay of 0 or more) is waited for when the runner stops. Without it a stop right
 * after a job ended could close the pool first, and the job, still locked, would run again later
 * (a webhook delivered twice). runOnce takes it too, so that what it ran is settled when it returns.
 */
export const workerPreset = { worker: { completeJobBatchDelay: 0, failJobBatchDelay: 0 } };

export interface RunningWorker {
  runner: Runner;
  /** Stops taking jobs, waits for running ones (graceful), then stops beating. */
  stop(): Promise<void>;
}

export async function startWorker(options: {
  pgPool: pg.Pool;
  concurrency: number;
  log: Logger;
  webhooks: WebhookWorkerSettings;
  /**
   * Seal audit entries in this process, over `pool` (the sealer role's connections); the sealer
   * may also run elsewhere: one seals at a time.
   */
  sealer?: { pool: pg.Pool; originPrefix: string; intervalMs: number; checkpointEveryMs: number };
}): Promise<RunningWorker> {
  const logger = new WorkerLogger(() => (level, message) => {
    if (level === "error") options.log.error(message);
    else if (level === "warning") options.log.warn(message);
    else if (level === "info") options.log.info(message);
    else options.log.debug(message);
  });
  const liveness = workerLiveness(options.pgPool, options.log);
  const runner = await run({
    pgPool: options.pgPool,
    taskList: taskList(options.pgPool, options.webhooks),
    crontab,
    concurrency: options.concurrency,
    noHandleSignals: true,
    preset: workerPreset,
    logger,
    events: liveness.events,
  });
  liveness.start();
  const sealer = options.sealer ? startSealer({ log: options.log, ...options.sealer }) : null;
  return {
    runner,
    async stop() {
      await runner.stop();
      await sealer?.stop();
      await liveness.stop();
    },
  };
}
