/**
 * The signed-in person's own pages, outside any tenant: GET / (a picker with a link to each of
 * their tenants — name, their role, plan — and the invitations waiting for them, with Accept /
 * Decline; straight on to the tenant when there is one tenant and nothing to answer), GET /account
 * (their own sign-in history, whatever their tenants), and the invitation link
 * GET /invitations/<token> with POST /invitations/<token or id>/accept|decline.
 * The database decides whose invitation it is (the invitee's session email) and what answering does.
 */
import { bodyParser } from "@koa/bodyparser";
import Router from "@koa/router";
import type Koa from "koa";
import type pg from "pg";
import { withContext } from "../../db/context.ts";
import { csrfToken, validCsrfToken } from "../../http/csrf.ts";
import { UserError } from "../../http/errors.ts";
import { actingContext, credentialsOf } from "../../http/request-context.ts";
import { aRole, formProblem, isoUtc, isUuid } from "../pages/settings-forms.ts";
import { redirectWithNotice, takeFlash } from "../pages/tenant-page.ts";
import { render } from "../render.ts";

/** How an invitation link's token looks (app_public.invite_member). */
const TOKEN = /^inv_[0-9a-f]{48}$/;

export interface MyInvitation {
  id: string;
  tenant_name: string;
  role: string;
  invited_by: string | null;
  expires_at: string;
  created_at: string;
}

export interface SignInRow {
  kind: "signed_in" | "signed_out" | "sign_in_failed";
  occurred_at: string;
  ip: string | null;
  user_agent: string | null;
  attempts: number | null;
  first_attempt_at: string | null;
  last_attempt_at: string | null;
}

const invitationColumns = `i.id, app_public.invitations_tenant_name(i) as tenant_name, i.role,
  app_public.invitations_invited_by_email(i) as invited_by, ${isoUtc("i.expires_at")} as expires_at,
  ${isoUtc("i.created_at")} as created_at`;

export function homeRoutes(options: { authPool: pg.Pool; visitorRole: string }): Router {
  const router = new Router();
  const form = bodyParser({ enableTypes: ["form"], formLimit: "16kb" });
  const asMe = <T>(ctx: Koa.Context, fn: (c: pg.PoolClient) => Promise<T>) =>
    withContext(options.authPool, actingContext(ctx, { role: options.visitorRole, surface: "web" }), fn);

  router.get("/", async (ctx) => {
    const { sessionToken } = credentialsOf(ctx);
    if (!sessionToken) return ctx.redirect("/login");
    const { user, tenants, invitations } = await asMe(ctx, async (c) => {
      const me = await c.query<{ email: string; name: string }>("select email, name from app_public.current_user()");
      const mine = await c.query<{ slug: string; name: string; role: string; plan: string }>(
        `select t.slug, t.name, app_public.tenants_my_role(t) as role, coalesce(p.name, t.plan_id) as plan
         from app_public.tenants t left join app_public.plans p on p.id = t.plan_id
         order by t.name, t.slug`,
      );
      const invited = await c.query<MyInvitation>(`select ${invitationColumns} from app_public.my_invitations() i`);
      return { user: me.rows[0] ?? null, tenants: mine.rows, invitations: invited.rows };
    });
    if (!user) return ctx.redirect("/login");
    // One tenant and nothing to answer: straight to work (a message waiting is shown there).
    if (tenants.length === 1 && invitations.length === 0) {
      return ctx.redirect(`/t/${encodeURIComponent(tenants[0].slug)}/incidents`);
    }
    ctx.type = "html";
    ctx.body = render("home", {
      email: user.email,
      name: user.name,
      tenants,
      invitations,
      csrf: csrfToken(sessionToken),
      flash: takeFlash(ctx),
    });
  });

  router.get("/account", async (ctx) => {
    const { sessionToken } = credentialsOf(ctx);
    if (!sessionToken) return ctx.redirect("/login?next=/account");
    const { user, signIns } = await asMe(ctx, async (c) => {
      const me = await c.query<{ email: string }>("select email from app_public.current_user()");
      const history = await c.query<SignInRow>(
        `select kind, ${isoUtc("occurred_at")} as occurred_at, ip, user_agent, attempts,
                ${isoUtc("first_attempt_at")} as first_attempt_at, ${isoUtc("last_attempt_at")} as last_attempt_at
         from app_public.my_sign_ins() limit 50`,
      );
      return { user: me.rows[0]?.email ?? null, signIns: history.rows };
    });
    if (!user) return ctx.redirect("/login?next=/account");
    ctx.type = "html";
    ctx.body = render("account", { email: user, signIns });
  });

  router.get("/invitations/:ref", async (ctx) => {
    const ref = ctx.params.ref ?? "";
    if (!TOKEN.test(ref)) throw new UserError(404, "This is not an invitation link.", "NOT_FOUND");
    const { sessionToken } = credentialsOf(ctx);
    const signIn = `/login?next=${encodeURIComponent(`/invitations/${ref}`)}`;
    if (!sessionToken) {
      ctx.type = "html";
      ctx.body = render("invitation", { signIn });
      return;
    }
    const found = await asMe(ctx, async (c) => {
      const me = await c.query<{ email: string }>("select email from app_public.current_user()");
      const { rows } = await c.query<MyInvitation & { state: string; open: boolean }>(
        `select ${invitationColumns}, i.state, app_public.invitations_is_open(i) as open
         from app_public.invitation_by_token($1) i where i.id is not null`,
        [ref],
      );
      return { email: me.rows[0]?.email ?? null, invitation: rows[0] };
    });
    if (!found.email) return ctx.redirect(signIn);
    ctx.status = found.invitation?.open ? 200 : 404;
    ctx.type = "html";
    ctx.body = render("invitation", {
      email: found.email,
      invitation: found.invitation,
      ref,
      csrf: csrfToken(sessionToken),
      signIn,
    });
  });

  router.post("/invitations/:ref/:answer", form, async (ctx) => {
    const { ref = "", answer = "" } = ctx.params;
    const byToken = TOKEN.test(ref);
    if ((!byToken && !isUuid(ref)) || (answer !== "accept" && answer !== "decline")) {
      throw new UserError(404, "There is no such invitation.", "NOT_FOUND");
    }
    const { sessionToken } = credentialsOf(ctx);
    if (!sessionToken) return ctx.redirect(`/login?next=${encodeURIComponent(byToken ? `/invitations/${ref}` : "/")}`);
    const sent = (ctx.request.body as Record<string, unknown> | undefined)?._csrf;
    if (!validCsrfToken(sessionToken, sent)) {
      throw new UserError(
        403,
        "This form has expired or did not come from Attest. Reload the page and try again.",
        "CSRF",
      );
    }
    let done: { slug: string | null; tenant_name: string; role: string };
    try {
      done = await asMe(ctx, async (c) => {
        const { rows } = await c.query<{ tenant_id: string; tenant_name: string; role: string }>(
          `select i.tenant_id, app_public.invitations_tenant_name(i) as tenant_name, i.role
           from app_public.${answer}_invitation(token => $1, id => $2) i`,
          [byToken ? ref : null, byToken ? null : ref.toLowerCase()],
        );
        // A statement of its own: the new membership is visible only after the one that made it.
        const tenant = await c.query<{ slug: string }>("select slug from app_public.tenants where id = $1", [
          rows[0].tenant_id,
        ]);
        return { ...rows[0], slug: tenant.rows[0]?.slug ?? null };
      });
    } catch (error) {
      const problem = formProblem(error);
      if (!problem) throw error;
      ctx.status = problem.status;
      ctx.type = "html";
      ctx.body = render("invitation", { problem: problem.message, signIn: "/login" });
      return;
    }
    if (answer === "accept" && done.slug) {
      return redirectWithNotice(
        ctx,
        `/t/${encodeURIComponent(done.slug)}/incidents`,
        `You joined ${done.tenant_name} as ${aRole(done.role)}.`,
      );
    }
    redirectWithNotice(ctx, "/", `You declined the invitation to ${done.tenant_name}.`);
  });

  // The tenant switcher (a plain GET form, so it works without JavaScript).
  router.get("/switch", (ctx) => {
    const slug =
      typeof ctx.query.tenant === "string" && /^[a-z0-9-]{1,63}$/.test(ctx.query.tenant) ? ctx.query.tenant : "";
    ctx.redirect(slug ? `/t/${slug}/incidents` : "/");
  });
  return router;
}
