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
    `select w.id, w.url, w.description, w.actions, w.active, ${isoUtc("w.created_at")} as created_at,
            u.email as created_by
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

export function webhookRoutes(router: Router): void {
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
