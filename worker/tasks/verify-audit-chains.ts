/**
 * verify_audit_chains (daily, and on demand): recomputes every tenant's audit hash chain in the
 * database, records the result (app_private.chain_verifications: shown on the Audit Log page and
 * in reporting.chain_verifications) and logs every broken chain.
 */
import type { Task } from "graphile-worker";
import { queryUntilAborted } from "../cancel.ts";

export const verifyAuditChains: Task = async (_payload, helpers) => {
  const { rows } = await helpers.withPgClient(async (client) => {
    await client.query("begin");
    try {
      // Cancelled if the worker shuts down meanwhile: the job then runs again at the next start.
      await queryUntilAborted(client, helpers.abortSignal, "select app_private.record_chain_verifications()");
      const result = await client.query<{
        slug: string;
        valid: boolean;
        first_invalid_seq: string | null;
        problem: string | null;
      }>(
        `select distinct on (v.tenant_id) t.slug, v.valid, v.first_invalid_seq, v.problem
         from app_private.chain_verifications v join app_public.tenants t on t.id = v.tenant_id
         order by v.tenant_id, v.checked_at desc, v.id desc`,
      );
      await client.query("commit");
      return result;
    } catch (error) {
      await client.query("rollback");
      throw error;
    }
  });
  const broken = rows.filter((r) => !r.valid);
  for (const r of broken) {
    helpers.logger.error(`audit chain of tenant "${r.slug}" is broken at entry ${r.first_invalid_seq}: ${r.problem}`);
  }
  helpers.logger.info(`verified the audit chains of ${rows.length} tenants; ${broken.length} broken`);
};
