/**
 * Webhooks (/t/:slug/webhooks): the tenant's endpoints that receive audit events, a form to add
 * one (URL, description, actions filter) and a delete button per endpoint. Owners and admins
 * only, on plans with the `webhooks` feature. The signing secret is returned by
 * app_public.create_webhook exactly once: it is rendered into the response to that POST and
 * nowhere else (no redirect, no URL, no log). Row-level security decides everything.
 */
import type Router from "@koa/router";
import type Koa from "koa";
import type pg from "pg";
import { UserError } from "../../http/errors.ts";
import { webhookUrlProblem } from "../../webhooks/deliver.ts";
import { formProblem, formText, idParam, isoUtc, renderedInstead } from "./settings-forms.ts";
import { pageOf, redirectWithNotice, renderPage } from "./tenant-page.ts";

const TITLE = "Webhooks";
const NAV = "webhooks";
const GUARD = {
  title: TITLE,
  nav: NAV,
  feature: { key: "webhooks" as const, name: "Webhooks" },
  managersOnly: "manage webhooks",
};

/** An action filter entry: an exact action (incident.created) or a prefix (incident.*). */
const ACTION = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?$/;
const MAX_ACTIONS = 50;

export interface WebhookForm {
  url: string;
  description: string;
  actions: string;
}

export interface WebhookRow {
  id: string;
  url: string;
  description: string;
  actions: string[];
  active: boolean;
  created_at: string;
  created_by: string | null;
}

/** Splits "incident.*, export.requested" on commas and white space; [] means all actions. */
export function parseActions(text: string): { actions: string[]; error?: string } {
  const actions = [...new Set(text.split(/[\s,]+/).filter(Boolean))];
  const bad = actions.find((a) => a.length > 100 || !ACTION.test(a));
  if (bad !== undefined) {
    return {
      actions,
      error: `"${bad.slice(0, 100)}" is not an action. Use names like incident.created or prefixes like incident.*, separated by commas or spaces.`,
    };
  }
  if (actions.length > MAX_ACTIONS) return { actions, error: `At most ${MAX_ACTIONS} actions, please.` };
  return { actions };
}

export async function readWebhooks(client: pg.ClientBase): Promise<WebhookRow[]> {
  const { rows } = await client.query<WebhookRow>(
    `select w.id, w.url, w.description, w.actions, w.active, w.disabled_reason, ${isoUtc("w.created_at")} as created_at,
            u.email as created_by,
            coalesce((select json_agg(json_build_object(
                'id', d.id, 'action', d.action, 'is_test', d.is_test, 'status', d.status, 'attempts', d.attempts,
                'last_status_code', d.last_status_code, 'last_error', d.last_error,
                'last_attempt_at', ${isoUtc("d.last_attempt_at")}, 'next_attempt_at', ${isoUtc("d.next_attempt_at")},
                'created_at', ${isoUtc("d.created_at")}) order by d.created_at desc)
              from app_public.webhook_deliveries(w.id, 10) d), '[]') as deliveries
     from app_public.webhooks w
     left join app_public.users u on u.id = w.created_by
     order by w.created_at desc, w.url`,
  );
  return rows;
}

async function renderWebhooks(
  ctx: Koa.Context,
  extra: {
    status?: number;
    form?: WebhookForm;
    errors?: Partial<Record<keyof WebhookForm | "form", string>>;
    created?: { id: string; url: string; secret: string };
  } = {},
) {
  const page = pageOf(ctx);
  const webhooks = await page.tx((c) => readWebhooks(c));
  renderPage(
    ctx,
    "pages/webhooks",
    {
      webhooks,
      base: `/t/${page.shell.tenant.slug}/webhooks`,
      form: extra.form ?? { url: "", description: "", actions: "" },
      errors: extra.errors ?? {},
      created: extra.created,
    },
    { title: TITLE, nav: NAV, status: extra.status },
  );
}

export function webhookRoutes(router: Router, options: { allowPrivate: boolean }): void {
  router.get("/webhooks", async (ctx) => {
    if (renderedInstead(ctx, GUARD)) return;
    await renderWebhooks(ctx);
  });

  router.post("/webhooks", async (ctx) => {
    if (renderedInstead(ctx, GUARD)) return;
    const form: WebhookForm = {
      url: formText(ctx, "url", 2100),
      description: formText(ctx, "description", 600),
      actions: formText(ctx, "actions", 6000),
    };
    const urlProblem = webhookUrlProblem(form.url, options.allowPrivate);
    if (urlProblem) return renderWebhooks(ctx, { status: 400, form, errors: { url: urlProblem } });
    const parsed = parseActions(form.actions);
    if (parsed.error) return renderWebhooks(ctx, { status: 400, form, errors: { actions: parsed.error } });
    let created: { id: string; url: string; secret: string };
    try {
      created = await pageOf(ctx).tx(async (c) => {
        const { rows } = await c.query<{ id: string; url: string; secret: string }>(
          "select id, url, secret from app_public.create_webhook($1, $2, $3::text[])",
          [form.url, form.description, parsed.actions],
        );
        return rows[0];
      });
    } catch (error) {
      const problem = formProblem(error);
      if (!problem) throw error;
      const field = problem.constraint?.startsWith("webhooks_description")
        ? "description"
        : problem.constraint?.startsWith("webhooks_actions")
          ? "actions"
          : problem.constraint?.startsWith("webhooks_url")
            ? "url"
            : "form";
      return renderWebhooks(ctx, { status: problem.status, form, errors: { [field]: problem.message } });
    }
    // The secret exists only in this response: keep it out of every cache.
    ctx.set("Cache-Control", "no-store");
    await renderWebhooks(ctx, { status: 201, created });
  });

  // Send a test event, redeliver a failed delivery, switch a webhook on or off.
  router.post("/webhooks/:id/test", async (ctx) => {
    if (renderedInstead(ctx, GUARD)) return;
    const base = `/t/${pageOf(ctx).shell.tenant.slug}/webhooks`;
    await pageOf(ctx).tx((c) => c.query("select app_public.send_webhook_test($1)", [idParam(ctx, "id", "webhook")]));
    redirectWithNotice(
      ctx,
      `${base}#webhook-${ctx.params.id}`,
      "A test event is on its way; its delivery shows below.",
    );
  });

  router.post("/webhooks/:id/deliveries/:deliveryId/redeliver", async (ctx) => {
    if (renderedInstead(ctx, GUARD)) return;
    const base = `/t/${pageOf(ctx).shell.tenant.slug}/webhooks`;
    await pageOf(ctx).tx((c) =>
      c.query("select app_public.redeliver_webhook_delivery($1)", [idParam(ctx, "deliveryId", "delivery")]),
    );
    redirectWithNotice(ctx, `${base}#webhook-${ctx.params.id}`, "The event is queued for delivery again.");
  });

  router.post("/webhooks/:id/active", async (ctx) => {
    if (renderedInstead(ctx, GUARD)) return;
    const base = `/t/${pageOf(ctx).shell.tenant.slug}/webhooks`;
    const active = formText(ctx, "active", 5) === "true";
    const { rows } = await pageOf(ctx).tx((c) =>
      c.query<{ url: string }>(
        // Re-enabling also clears disabled_reason and the failure count (a database rule: the
        // visitor role may only change `active`).
        "update app_public.webhooks set active = $2 where id = $1 returning url",
        [idParam(ctx, "id", "webhook"), active],
      ),
    );
    if (rows.length === 0) throw new UserError(404, "No such webhook in this tenant.", "NOT_FOUND");
    redirectWithNotice(ctx, base, `${active ? "Enabled" : "Disabled"} the webhook ${rows[0].url}.`);
  });

  router.post("/webhooks/:id/delete", async (ctx) => {
    if (renderedInstead(ctx, GUARD)) return;
    const id = idParam(ctx, "id", "webhook");
    const base = `/t/${pageOf(ctx).shell.tenant.slug}/webhooks`;
    const deleted = await pageOf(ctx).tx(async (c) => {
      const { rows } = await c.query<{ url: string }>("delete from app_public.webhooks where id = $1 returning url", [
        id,
      ]);
      return rows[0];
    });
    if (!deleted) return redirectWithNotice(ctx, base, "That webhook was already deleted.", "error");
    redirectWithNotice(ctx, base, `Webhook ${deleted.url} deleted.`);
  });
}
