/**
 * Which job made a change: the request context a graphile-worker task writes under, so that the
 * audit entries it causes say which job (task identifier and job id) and which attempt. The
 * capture trigger records it as it records a web request: `surface` = `worker`, `request_id` =
 * `job:<task identifier>:<job id>`, `user_agent` = `graphile-worker <task> job <id> (attempt n of m)`.
 * The actor stays `system` (the owner role acts; no user does).
 */
import type { Job } from "graphile-worker";
import type pg from "pg";
import { type ActingContext, contextSettings } from "../src/db/context.ts";

export function jobContext(job: Pick<Job, "id" | "task_identifier" | "attempts" | "max_attempts">): ActingContext {
  return {
    surface: "worker",
    requestId: `job:${job.task_identifier}:${job.id}`,
    userAgent: `graphile-worker ${job.task_identifier} job ${job.id} (attempt ${job.attempts} of ${job.max_attempts})`,
  };
}

/** Applies a job's context to the open transaction of `client` (transaction-local settings). */
export async function setJobContext(client: pg.ClientBase, job: Parameters<typeof jobContext>[0]): Promise<void> {
  const entries = Object.entries(contextSettings(jobContext(job)));
  await client.query(
    `select ${entries.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(", ")}`,
    entries.flat(),
  );
}
