/**
 * verify_audit_chains (daily, and on demand): recomputes every tenant's audit hash chain in the
 * database, records the result (app_private.chain_verifications: shown on the Audit Log page and
 * in reporting.chain_verifications) and logs every broken chain.
 *
 * It runs beside the product, so it takes one core at most: each tenant in a transaction of its
 * own, without PostgreSQL's parallel workers (which Verify now keeps: a person waits for it). All
 * of them in one statement with workers held both cores of the 2-core machine for 77 s at
 * 10,000,000 entries, and the pages' latency with them (src/audit/DESIGN.md, "Verification").
 * A run stopped part-way (a shutdown) keeps what it recorded, and its next attempt verifies only
 * the tenants with no verification recorded since the job was queued.
 */
import type { Task } from "graphile-worker";
import { queryUntilAborted } from "../cancel.ts";

interface Verdict {
  slug: string;
  valid: boolean;
  first_invalid_seq: string | null;
  problem: string | null;
}

export const verifyAuditChains: Task = async (_payload, helpers) => {
  const { rows: tenants } = await helpers.withPgClient((client) =>
    client.query<{ id: string }>(
      `select t.id from app_public.tenants t
       where not exists (select from app_private.chain_verifications v where v.tenant_id = t.id and v.checked_at >= $1)
       order by t.slug`,
      [helpers.job.created_at],
    ),
  );
  let broken = 0;
  for (const { id } of tenants) {
    const verdict = await helpers.withPgClient(async (client) => {
      await client.query("begin; set local max_parallel_workers_per_gather = 0");
      try {
        // Cancelled if the worker shuts down meanwhile: the job then runs again at the next start.
        const { rows } = await queryUntilAborted<Verdict>(
          client,
          helpers.abortSignal,
          `select t.slug, v.valid, v.first_invalid_seq, v.problem
           from app_public.tenants t cross join lateral app_private.record_chain_verification(t.id) v
           where t.id = $1`,
          [id],
        );
        await client.query("commit");
        return rows[0];
      } catch (error) {
        await client.query("rollback");
        throw error;
      }
    });
    if (verdict && !verdict.valid) {
      broken++;
      helpers.logger.error(
        `audit chain of tenant "${verdict.slug}" is broken at entry ${verdict.first_invalid_seq}: ${verdict.problem}`,
      );
    }
  }
  helpers.logger.info(`verified the audit chains of ${tenants.length} tenants; ${broken} broken`);
};
