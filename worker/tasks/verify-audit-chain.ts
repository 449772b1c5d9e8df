/**
 * verify_audit_chain (Verify now on the Audit Log page): verifies one tenant's audit log in the
 * database and records the result (app_private.chain_verifications), which the page shows. A log
 * of millions of entries takes longer than a request may (about 45 s for 2,000,000 on 2 cores).
 */
import type { Task } from "graphile-worker";
import { queryUntilAborted } from "../cancel.ts";

export const verifyAuditChain: Task = async (payload, helpers) => {
  const tenantId = (payload as { tenantId?: unknown } | null)?.tenantId;
  if (typeof tenantId !== "string") throw new Error("verify_audit_chain needs a tenantId");
  // Cancelled if the worker shuts down meanwhile: the job then runs again at the next start.
  const { rows } = await helpers.withPgClient((client) =>
    queryUntilAborted<{
      slug: string;
      valid: boolean;
      last_seq: string;
      first_invalid_seq: string | null;
      problem: string | null;
    }>(
      client,
      helpers.abortSignal,
      `select t.slug, v.valid, v.last_seq, v.first_invalid_seq, v.problem
       from app_private.record_chain_verification($1) v cross join app_public.tenants t where t.id = $1`,
      [tenantId],
    ),
  );
  const r = rows[0];
  if (!r) return; // the tenant is gone
  if (r.valid) helpers.logger.info(`verified the audit log of tenant "${r.slug}": ${r.last_seq} entries intact`);
  else
    helpers.logger.error(`audit chain of tenant "${r.slug}" is broken at entry ${r.first_invalid_seq}: ${r.problem}`);
};
