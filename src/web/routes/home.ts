/**
 * GET /: who is signed in and in which tenants (or off to /login). The workspace pages build on it.
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
      const me = await c.query<{ email: string }>("select email from app_public.current_user()");
      const mine = await c.query<{ slug: string; name: string; role: string }>(
        "select t.slug, t.name, app_public.tenants_my_role(t) as role from app_public.tenants t order by t.name",
      );
      return { user: me.rows[0]?.email ?? null, tenants: mine.rows };
    });
    if (!user) return ctx.redirect("/login");
    if (tenants.length === 1) return ctx.redirect(`/t/${encodeURIComponent(tenants[0].slug)}/incidents`);
    ctx.type = "html";
    ctx.body = render("home", { email: user, tenants });
  });
  // The tenant switcher (a plain GET form, so it works without JavaScript).
  router.get("/switch", (ctx) => {
    const slug =
      typeof ctx.query.tenant === "string" && /^[a-z0-9-]{1,63}$/.test(ctx.query.tenant) ? ctx.query.tenant : "";
    ctx.redirect(slug ? `/t/${slug}/incidents` : "/");
  });
  return router;
}
