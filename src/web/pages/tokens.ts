/**
 * API Tokens (/t/:slug/tokens): the tenant's tokens for integrators (name, prefix, who created
 * it, when, last use, expiry, state), a form to create one (app_public.create_api_token) and a
 * revoke button (app_public.revoke_api_token). Owners and admins only. The token itself is
 * returned once: it is rendered into the response to the creating POST with a curl example for
 * /graphql, and nowhere else (no redirect, no URL, no log; the database keeps only its hash).
 */
import type Router from "@koa/router";
import type Koa from "koa";
import type pg from "pg";
import { ownOrigin } from "../../http/csrf.ts";
import { formProblem, formText, idParam, isoUtc, renderedInstead } from "./settings-forms.ts";
import { pageOf, redirectWithNotice, renderPage } from "./tenant-page.ts";

const TITLE = "API Tokens";
const NAV = "tokens";
const GUARD = { title: TITLE, nav: NAV, managersOnly: "manage API tokens" };
const DATE = /^\d{4}-\d{2}-\d{2}$/;

export interface TokenForm {
  name: string;
  /** The last day the token works (UTC), YYYY-MM-DD, or "" for no expiry. */
  expires_on: string;
}

export interface TokenRow {
  id: string;
  name: string;
  token_prefix: string;
  created_by: string | null;
  created_at: string;
  last_used_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
  state: "active" | "expired" | "revoked";
}

export interface CreatedToken {
  id: string;
  name: string;
  token: string;
  expires_at: string | null;
}

/** The moment a token with last day `day` (UTC) stops working: the next midnight UTC. */
export function expiryOf(day: string): string | undefined {
  if (!DATE.test(day)) return undefined;
  const start = Date.parse(`${day}T00:00:00Z`);
  if (Number.isNaN(start) || new Date(start).toISOString().slice(0, 10) !== day) return undefined;
  return new Date(start + 86_400_000).toISOString();
}

export async function readTokens(client: pg.ClientBase): Promise<TokenRow[]> {
  const { rows } = await client.query<TokenRow>(
    `select t.id, t.name, t.token_prefix, u.email as created_by,
            ${isoUtc("t.created_at")} as created_at, ${isoUtc("t.last_used_at")} as last_used_at,
            ${isoUtc("t.expires_at")} as expires_at, ${isoUtc("t.revoked_at")} as revoked_at,
            case when t.revoked_at is not null then 'revoked'
                 when t.expires_at <= now() then 'expired'
                 else 'active' end as state
     from app_public.api_tokens t
     left join app_public.users u on u.id = t.user_id
     order by (t.revoked_at is null and (t.expires_at is null or t.expires_at > now())) desc, t.created_at desc`,
  );
  return rows;
}

async function renderTokens(
  ctx: Koa.Context,
  extra: {
    status?: number;
    form?: TokenForm;
    errors?: Partial<Record<keyof TokenForm | "form", string>>;
    created?: CreatedToken;
  } = {},
) {
  const page = pageOf(ctx);
  const tokens = await page.tx((c) => readTokens(c));
  renderPage(
    ctx,
    "pages/tokens",
    {
      tokens,
      base: `/t/${page.shell.tenant.slug}/tokens`,
      graphqlUrl: `${ownOrigin(ctx)}/graphql`,
      today: new Date().toISOString().slice(0, 10),
      form: extra.form ?? { name: "", expires_on: "" },
      errors: extra.errors ?? {},
      created: extra.created,
    },
    { title: TITLE, nav: NAV, status: extra.status },
  );
}

export function tokenRoutes(router: Router): void {
  router.get("/tokens", async (ctx) => {
    if (renderedInstead(ctx, GUARD)) return;
    await renderTokens(ctx);
  });

  router.post("/tokens", async (ctx) => {
    if (renderedInstead(ctx, GUARD)) return;
    const form: TokenForm = { name: formText(ctx, "name", 200), expires_on: formText(ctx, "expires_on", 20) };
    const expiresAt = form.expires_on ? expiryOf(form.expires_on) : null;
    if (expiresAt === undefined) {
      return renderTokens(ctx, {
        status: 400,
        form,
        errors: {
          expires_on: "Enter the expiry as a date (YYYY-MM-DD), or leave it empty for a token that does not expire.",
        },
      });
    }
    let created: CreatedToken;
    try {
      created = await pageOf(ctx).tx(async (c) => {
        const { rows } = await c.query<CreatedToken>(
          `select id, name, token, ${isoUtc("expires_at")} as expires_at
           from app_public.create_api_token($1, $2::timestamptz)`,
          [form.name, expiresAt],
        );
        return rows[0];
      });
    } catch (error) {
      const problem = formProblem(error);
      if (!problem) throw error;
      const e = error as { code?: string; constraint?: string };
      const field = e.constraint === "api_tokens_name_check" ? "name" : e.code === "22023" ? "expires_on" : "form";
      return renderTokens(ctx, { status: problem.status, form, errors: { [field]: problem.message } });
    }
    // The token exists only in this response: keep it out of every cache.
    ctx.set("Cache-Control", "no-store");
    await renderTokens(ctx, { status: 201, created });
  });

  router.post("/tokens/:id/revoke", async (ctx) => {
    if (renderedInstead(ctx, GUARD)) return;
    const id = idParam(ctx, "id", "API token");
    const base = `/t/${pageOf(ctx).shell.tenant.slug}/tokens`;
    let name: string;
    try {
      name = await pageOf(ctx).tx(async (c) => {
        const { rows } = await c.query<{ name: string }>("select name from app_public.revoke_api_token($1)", [id]);
        return rows[0].name;
      });
    } catch (error) {
      if ((error as { code?: string }).code !== "P0002") throw error;
      return redirectWithNotice(ctx, base, "That token is already revoked, or no longer exists.", "error");
    }
    redirectWithNotice(ctx, base, `API token "${name}" revoked. Requests that use it are refused from now on.`);
  });
}
