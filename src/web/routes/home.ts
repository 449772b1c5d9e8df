/**
 * GET /: where a signed-in user goes next. One tenant: straight to its incidents. Several (or
 * none): a picker with a link to each tenant (name, the user's role, plan). Off to /login otherwise.
 */
import Router from "@koa/router";
import type pg from "pg";
import { withContext } from "../../db/context.ts";
import { render } from "../render.ts";
import { actingContext } from "../request-context.ts";

export function homeRoutes(options: { authPool: pg.Pool; visitorRole: string }): Router {
  const router = new Router();
  router.get("/", async (ctx) => {
    const context = actingContext(ctx, { role: options.visitorRole, surface: "web" });
    if (!context.sessionToken) return ctx.redirect("/login");
    const { user, tenants } = await withContext(options.authPool, context, async (c) => {
      const me = await c.query<{ email: string; name: string }>("select email, name from app_public.current_user()");
      const mine = await c.query<{ slug: string; name: string; role: string; plan: string }>(
        `select t.slug, t.name, app_public.tenants_my_role(t) as role, coalesce(p.name, t.plan_id) as plan
         from app_public.tenants t left join app_public.plans p on p.id = t.plan_id
         order by t.name, t.slug`,
      );
      return { user: me.rows[0] ?? null, tenants: mine.rows };
    });
    if (!user) return ctx.redirect("/login");
    if (tenants.length === 1) return ctx.redirect(`/t/${encodeURIComponent(tenants[0].slug)}/incidents`);
    ctx.type = "html";
    ctx.body = render("home", { email: user.email, name: user.name, tenants });
  });
  // The tenant switcher (a plain GET form, so it works without JavaScript).
  router.get("/switch", (ctx) => {
    const slug =
      typeof ctx.query.tenant === "string" && /^[a-z0-9-]{1,63}$/.test(ctx.query.tenant) ? ctx.query.tenant : "";
    ctx.redirect(slug ? `/t/${slug}/incidents` : "/");
  });
  return router;
}
