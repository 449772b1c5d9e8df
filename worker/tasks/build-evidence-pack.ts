/**
 * build_evidence_pack: builds a requested evidence pack (src/packs/build.ts), once the incident's
 * audit entries are sealed (waitUntilSealed: up to 15 s, then the attempt fails and is retried). Enqueued by the
 * database in the transaction that requested it; retried by graphile-worker if it fails or the
 * process dies (see worker/liveness.ts). The last failed attempt marks the export `failed` with a
 * reason a person can read.
 */
import type { Task } from "graphile-worker";
import type pg from "pg";
import { withContext } from "../../src/db/context.ts";
import { buildEvidencePack, waitUntilSealed } from "../../src/packs/build.ts";
import { jobContext, setJobContext } from "../job-context.ts";

interface Payload {
  tenantId: string;
  exportId: string;
}

function isPayload(value: unknown): value is Payload {
  const v = value as Partial<Payload> | null;
  return typeof v?.tenantId === "string" && typeof v?.exportId === "string";
}

export function buildEvidencePackTask(ownerPool: pg.Pool): Task {
  return async (payload, helpers) => {
    if (!isPayload(payload)) throw new Error(`build_evidence_pack: bad payload ${JSON.stringify(payload)}`);
    const { tenantId, exportId } = payload;
    // Every change this job makes is recorded with the job's context (which job, which attempt).
    const asJob = jobContext(helpers.job);
    const setProgress = (percent: number) =>
      ownerPool
        .query("update app_public.exports set progress = $3 where tenant_id = $1 and id = $2 and status = 'building'", [
          tenantId,
          exportId,
          percent,
        ])
        .catch((error) => helpers.logger.warn(`could not report progress: ${(error as Error).message}`));
    await withContext(ownerPool, asJob, (c) =>
      c.query(
        `update app_public.exports set status = 'building', progress = 0, error = null, started_at = now()
         where tenant_id = $1 and id = $2 and status in ('queued', 'building')`,
        [tenantId, exportId],
      ),
    );
    try {
      // Outside the build's transaction: the sealer must be able to seal the incident's entries.
      const waitStarted = performance.now();
      await waitUntilSealed(ownerPool, tenantId, exportId);
      const sealWaitMs = performance.now() - waitStarted;
      const result = await helpers.withPgClient(async (client) => {
        await client.query("begin");
        try {
          await setJobContext(client, helpers.job);
          const built = await buildEvidencePack({ client, ownerPool, tenantId, exportId, onProgress: setProgress });
          await client.query("commit");
          return built;
        } catch (error) {
          await client.query("rollback").catch(() => {});
          throw error;
        }
      });
      const s = (ms = 0) => `${(ms / 1000).toFixed(2)} s`;
      const t = result.timings;
      helpers.logger.info(
        result.status === "ready"
          ? `evidence pack ${exportId} is ready (ZIP ${result.zipBytes} bytes, PDF ${result.pdfBytes} bytes; ` +
              `waited for the seal ${s(sealWaitMs)}, prepared ${s(t?.prepareMs)}, PDF ${s(t?.pdfMs)}, ZIP ${s(t?.zipMs)})`
          : `evidence pack ${exportId}: nothing to do`,
      );
    } catch (error) {
      const message = (error as Error).message;
      const last = helpers.job.attempts >= helpers.job.max_attempts;
      await withContext(ownerPool, asJob, (c) =>
        c.query(
          `update app_public.exports set status = $3, progress = 0, error = $4, finished_at = case when $3 = 'failed' then now() end
           where tenant_id = $1 and id = $2 and status <> 'ready'`,
          [
            tenantId,
            exportId,
            last ? "failed" : "queued",
            last
              ? `The pack could not be built: ${message}`
              : `Attempt ${helpers.job.attempts} of ${helpers.job.max_attempts} failed (${message}); retrying.`,
          ],
        ),
      );
      throw error;
    }
  };
}
