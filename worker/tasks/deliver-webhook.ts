/**
 * deliver_webhook: sends a webhook's pending deliveries, oldest first, one at a time (one job per
 * webhook, in its own graphile-worker queue, so order is kept). A failure stops the queue: the
 * delivery gets its next attempt time (exponential backoff on its own attempts: e^n seconds,
 * capped at e^10 ≈ 6 h) and the job is scheduled for then — new events do not bring it forward.
 * After `maxFailures` failures in a row the webhook is disabled (audited as webhook.disabled) and
 * its pending deliveries fail.
 */
import type { JobHelpers, Task } from "graphile-worker";
import type pg from "pg";
import { type DeliverySettings, postWebhook } from "../../src/webhooks/deliver.ts";
import { setJobContext } from "../job-context.ts";

export interface WebhookWorkerSettings extends DeliverySettings {
  maxFailures: number;
}

interface Payload {
  tenantId: string;
  webhookId: string;
}

const BATCH = 50;

export function deliverWebhookTask(ownerPool: pg.Pool, settings: WebhookWorkerSettings): Task {
  return async (raw, helpers) => {
    const { tenantId, webhookId } = raw as Payload;
    for (let sent = 0; sent < BATCH; sent++) {
      const { rows: hooks } = await ownerPool.query<{
        url: string;
        active: boolean;
        secret: string;
        slug: string;
        failures: number;
      }>(
        `select w.url, w.active, s.secret, t.slug, w.consecutive_failures as failures
         from app_public.webhooks w
         join app_private.webhook_secrets s on s.tenant_id = w.tenant_id and s.webhook_id = w.id
         join app_public.tenants t on t.id = w.tenant_id
         where w.tenant_id = $1 and w.id = $2`,
        [tenantId, webhookId],
      );
      const hook = hooks[0];
      if (!hook?.active) {
        await ownerPool.query(
          `update app_private.webhook_deliveries set status = 'failed', last_error = 'the webhook is disabled or deleted'
           where tenant_id = $1 and webhook_id = $2 and status = 'pending'`,
          [tenantId, webhookId],
        );
        return;
      }
      const { rows: pending } = await ownerPool.query<{
        id: string;
        action: string;
        is_test: boolean;
        attempts: number;
        next_attempt_at: Date | null;
        entry: Record<string, unknown> | null;
      }>(
        `select d.id, d.action, d.is_test, d.attempts, d.next_attempt_at,
                (select app_private.audit_entry_body(e)::jsonb
                          || jsonb_build_object('seq', l.seq, 'leaf_hash', encode(l.leaf_hash, 'hex'))
                 from app_public.audit_log e
                 left join app_hidden.audit_leaves l on l.tenant_id = e.tenant_id and l.entry_id = e.id
                 where e.tenant_id = d.tenant_id and e.id = d.audit_entry_id) as entry
         from app_private.webhook_deliveries d
         where d.tenant_id = $1 and d.webhook_id = $2 and d.status = 'pending'
         order by d.created_at, d.audit_entry_id nulls last
         limit 1`,
        [tenantId, webhookId],
      );
      const delivery = pending[0];
      if (!delivery) return;
      if (delivery.next_attempt_at && delivery.next_attempt_at.getTime() > Date.now() + 500) {
        await schedule(helpers, tenantId, webhookId, delivery.next_attempt_at);
        return;
      }
      const entry = delivery.entry;
      const body = JSON.stringify({
        id: delivery.id,
        type: delivery.action,
        test: delivery.is_test,
        tenant: { id: tenantId, slug: hook.slug },
        occurred_at: entry?.occurred_at ?? new Date().toISOString(),
        entry: entry
          ? {
              id: entry.id,
              seq: entry.seq,
              action: entry.action,
              actor: entry.actor_label,
              actor_user_id: entry.actor_user_id,
              resource: { type: entry.resource_type, id: entry.resource_id, label: entry.resource_label },
              incident_id: entry.incident_id,
              diff: entry.changes,
              request_id: entry.request_id,
              surface: entry.surface,
              leaf_hash: entry.leaf_hash,
            }
          : null,
      });
      const result = await postWebhook(
        hook.url,
        hook.secret,
        { id: delivery.id, action: delivery.action, body },
        settings,
      );
      if (result.ok) {
        await ownerPool.query(
          `update app_private.webhook_deliveries
           set status = 'delivered', attempts = attempts + 1, last_status_code = $3, last_error = null,
               last_attempt_at = now(), next_attempt_at = null, delivered_at = now()
           where tenant_id = $1 and id = $2`,
          [tenantId, delivery.id, result.statusCode ?? null],
        );
        await ownerPool.query(
          "update app_public.webhooks set consecutive_failures = 0 where tenant_id = $1 and id = $2",
          [tenantId, webhookId],
        );
        continue;
      }
      const failures = hook.failures + 1;
      const backoffSeconds = Math.round(Math.exp(Math.min(delivery.attempts + 1, 10)));
      await ownerPool.query(
        `update app_private.webhook_deliveries
         set attempts = attempts + 1, last_status_code = $3, last_error = $4, last_attempt_at = now(),
             next_attempt_at = now() + make_interval(secs => $5)
         where tenant_id = $1 and id = $2`,
        [tenantId, delivery.id, result.statusCode ?? null, result.error ?? "failed", backoffSeconds],
      );
      if (failures >= settings.maxFailures) {
        const client = await ownerPool.connect();
        try {
          await client.query("begin");
          await setJobContext(client, helpers.job); // webhook.disabled names this job
          await client.query(
            `update app_public.webhooks set active = false, consecutive_failures = $3,
               disabled_reason = $4 where tenant_id = $1 and id = $2`,
            [
              tenantId,
              webhookId,
              failures,
              `Disabled after ${failures} failed deliveries in a row (last: ${result.error ?? "failed"}).`,
            ],
          );
          await client.query(
            `update app_private.webhook_deliveries set status = 'failed', next_attempt_at = null
             where tenant_id = $1 and webhook_id = $2 and status = 'pending'`,
            [tenantId, webhookId],
          );
          await client.query("commit");
        } catch (error) {
          await client.query("rollback").catch(() => {});
          throw error;
        } finally {
          client.release();
        }
        helpers.logger.warn(`webhook ${webhookId} disabled after ${failures} failed deliveries`);
        return;
      }
      await ownerPool.query(
        "update app_public.webhooks set consecutive_failures = $3 where tenant_id = $1 and id = $2",
        [tenantId, webhookId, failures],
      );
      helpers.logger.info(
        `delivery ${delivery.id} to webhook ${webhookId} failed (${result.error}); retrying in ${backoffSeconds} s`,
      );
      await schedule(helpers, tenantId, webhookId, new Date(Date.now() + backoffSeconds * 1000));
      return;
    }
    // More than a batch waiting: continue in a fresh job run so others get a turn.
    await schedule(helpers, tenantId, webhookId, new Date());
  };
}

/** (Re)schedules the webhook's job; a job added meanwhile by a new event keeps this time. */
async function schedule(helpers: JobHelpers, tenantId: string, webhookId: string, runAt: Date) {
  await helpers.addJob(
    "deliver_webhook",
    { tenantId, webhookId },
    {
      queueName: `webhook:${webhookId}`,
      jobKey: `webhook:${webhookId}`,
      jobKeyMode: "replace",
      runAt,
      maxAttempts: 1000,
    },
  );
}
