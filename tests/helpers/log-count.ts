/**
 * A count of a tenant's Audit Log entries straight from the log (as the superuser), to check the
 * counts Attest works out from what it keeps (GraphQL's totalCount) against.
 */
import type pg from "pg";
import { likeContaining } from "../../src/db/like.ts";

/** The tenant's entries that meet a condition: a word, actions, people and a window. */
export async function countLog(db: pg.Pool, tenant: string, condition: Record<string, string>): Promise<string> {
  const { rows } = await db.query<{ n: string }>(
    `select count(*)::text as n from app_public.audit_log e
     where e.tenant_id = $1 and e.resource_label ilike $2
       and ($3::text is null or e.action = $3) and ($4::text is null or e.action like $4 || '%')
       and ($5::text is null or e.actor_label = $5) and ($6::text is null or e.actor_label ilike $6)
       and ($7::timestamptz is null or e.occurred_at >= $7) and ($8::timestamptz is null or e.occurred_at < $8)`,
    [
      tenant,
      likeContaining(condition.resourceLabelContains),
      condition.action ?? null,
      condition.actionPrefix ?? null,
      condition.actorLabel ?? null,
      condition.actorContains === undefined ? null : likeContaining(condition.actorContains),
      condition.occurredAfter ?? null,
      condition.occurredBefore ?? null,
    ],
  );
  return rows[0].n;
}
