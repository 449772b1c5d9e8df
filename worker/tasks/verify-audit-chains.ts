/**
 * verify_audit_chains: recomputes every tenant's audit hash chain in the database and reports
 * any tenant whose chain is broken (an entry altered, removed or reordered by a superuser).
 */
import type { Task } from "graphile-worker";

export const verifyAuditChains: Task = async (_payload, helpers) => {
  const { rows } = await helpers.query<{
    slug: string;
    valid: boolean;
    entries: string;
    first_invalid_seq: string | null;
    problem: string | null;
  }>(
    `select t.slug, v.valid, v.entries, v.first_invalid_seq, v.problem
     from app_public.tenants t cross join lateral app_public.verify_audit_chain(t.id) v
     order by t.slug`,
  );
  const broken = rows.filter((r) => !r.valid);
  for (const r of broken) {
    helpers.logger.error(`audit chain of tenant "${r.slug}" is broken at entry ${r.first_invalid_seq}: ${r.problem}`);
  }
  helpers.logger.info(`verified the audit chains of ${rows.length} tenants; ${broken.length} broken`);
};
