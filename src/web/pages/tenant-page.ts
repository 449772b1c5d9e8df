/**
 * The frame every workspace page (/t/:slug/…) shares: who is signed in, the tenant from the URL,
 * the user's role and plan features there, the tenant switcher, CSRF protection for forms, flash
 * messages, and rendering a whole page or (for htmx) just a fragment.
 * The database still decides everything: these facts only choose which page to show.
 */
import { bodyParser } from "@koa/bodyparser";
import type Koa from "koa";
import type pg from "pg";
import { type ActingContext, queryInContext, withContext } from "../../db/context.ts";
import { csrfToken, validCsrfToken } from "../../http/csrf.ts";
import { UserError } from "../../http/errors.ts";
import { actingContext, credentialsOf } from "../../http/request-context.ts";
import { render } from "../render.ts";

export type Role = "owner" | "admin" | "member" | "viewer";
export type Feature = "auditLog" | "nis2Timeline" | "evidencePacks" | "webhooks";

export interface Shell {
  user: { id: string; email: string; name: string };
  tenant: { id: string; slug: string; name: string; plan: string; features: Feature[] };
  role: Role;
  tenants: Array<{ slug: string; name: string; role: Role }>;
  csrf: string;
}

export interface PageState {
  shell: Shell;
  acting: ActingContext;
  /** Runs `fn` in one transaction as the signed-in user in this tenant. */
  tx<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  flash?: { kind: "notice" | "error"; text: string };
}

declare module "koa" {
  interface DefaultState {
    page?: PageState;
  }
}

interface ShellRow {
  user_id: string | null;
  email: string;
  user_name: string;
  tenant_id: string | null;
  slug: string;
  tenant_name: string;
  plan_name: string;
  features: Feature[];
  role: Role;
  tenants: Shell["tenants"];
}

const FLASH_COOKIE = "attest_flash";
const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export function isManager(shell: Shell): boolean {
  return shell.role === "owner" || shell.role === "admin";
}
export function isEditor(shell: Shell): boolean {
  return shell.role !== "viewer";
}
export function hasFeature(shell: Shell, feature: Feature): boolean {
  return shell.tenant.features.includes(feature);
}

/** The page state set by `tenantPages`; throws when a route forgot the middleware. */
export function pageOf(ctx: Koa.Context): PageState {
  const page = ctx.state.page;
  if (!page) throw new Error("tenant page middleware missing");
  return page;
}

/** True for htmx requests that want a fragment (not a boosted/full page or a history restore). */
export function wantsFragment(ctx: Koa.Context): boolean {
  return (
    ctx.get("hx-request") === "true" && ctx.get("hx-request-type") !== "full" && !ctx.get("hx-history-restore-request")
  );
}

/** Renders `view` inside the app layout, or alone for an htmx fragment request. */
export function renderPage(
  ctx: Koa.Context,
  view: string,
  data: Record<string, unknown>,
  options: { status?: number; title: string; nav: string; fragment?: string },
): void {
  const page = pageOf(ctx);
  ctx.status = options.status ?? 200;
  ctx.type = "html";
  ctx.set("Vary", "HX-Request, HX-Request-Type");
  const it = { ...data, shell: page.shell, flash: page.flash, title: options.title, nav: options.nav, path: ctx.path };
  if (options.fragment && wantsFragment(ctx)) {
    ctx.body = render(options.fragment, it);
    return;
  }
  ctx.body = render(view, it);
}

/** The one-time message a redirect left (redirectWithNotice), removed once read. */
export function takeFlash(ctx: Koa.Context): PageState["flash"] {
  const raw = ctx.cookies.get(FLASH_COOKIE);
  if (!raw) return undefined;
  ctx.cookies.set(FLASH_COOKIE, null, { path: "/", overwrite: true });
  try {
    const flash = JSON.parse(Buffer.from(raw, "base64url").toString("utf8")) as PageState["flash"];
    return flash && (flash.kind === "notice" || flash.kind === "error") && typeof flash.text === "string"
      ? flash
      : undefined;
  } catch {
    return undefined;
  }
}

/** Redirects after a form post (with a one-time message); htmx follows it as a full page load. */
export function redirectWithNotice(
  ctx: Koa.Context,
  location: string,
  text: string,
  kind: "notice" | "error" = "notice",
) {
  ctx.cookies.set(FLASH_COOKIE, Buffer.from(JSON.stringify({ kind, text })).toString("base64url"), {
    httpOnly: true,
    sameSite: "lax",
    path: "/",
    maxAge: 60_000,
    overwrite: true,
  });
  if (ctx.get("hx-request") === "true") {
    // A full navigation: the new page opens at the top with its message in view.
    ctx.status = 204;
    ctx.set("HX-Redirect", location);
    return;
  }
  ctx.redirect(location);
}

/**
 * Where to come back to after signing in: the page itself. An htmx request (a fragment the page
 * polls or loads) names the page it was made from (HX-Current-URL); a fragment alone is no page.
 */
function backTo(ctx: Koa.Context): string {
  if (ctx.get("hx-request") === "true") {
    try {
      const page = new URL(ctx.get("hx-current-url"));
      if (page.host === ctx.host && page.pathname.startsWith("/t/")) return `${page.pathname}${page.search}`;
    } catch {
      // no or no valid header: the request's own URL
    }
  }
  return ctx.url;
}

/** Middleware for /t/:slug/…: signs the user in or sends them to /login, loads the shell, checks CSRF. */
export function tenantPages(options: { authPool: pg.Pool; visitorRole: string }): Koa.Middleware {
  const form = bodyParser({ enableTypes: ["form"], formLimit: "64kb" });
  return async (ctx, next) => {
    const slug = (ctx.params as { slug?: string }).slug ?? "";
    const { sessionToken } = credentialsOf(ctx);
    const toLogin = () => {
      const location = `/login?next=${encodeURIComponent(ctx.method === "GET" ? backTo(ctx) : `/t/${slug}`)}`;
      if (ctx.get("hx-request") === "true") {
        ctx.status = 401;
        ctx.set("HX-Location", location);
        ctx.body = "";
        return;
      }
      ctx.redirect(location);
    };
    if (!sessionToken) return toLogin();

    const acting = actingContext(ctx, { role: options.visitorRole, surface: "web", tenant: slug });
    const tx = <T>(fn: (client: pg.PoolClient) => Promise<T>) => withContext(options.authPool, acting, fn);
    // One round trip: the context, the question and the commit go as one message.
    const { rows } = await queryInContext<ShellRow>(
      options.authPool,
      acting,
      (c) => `select * from app_hidden.page_shell(${c.escapeLiteral(slug)})`,
    );
    const row = rows[0];
    if (!row?.user_id) return toLogin();
    if (!row.tenant_id) {
      throw new UserError(404, `There is no tenant "${slug}", or you are not a member of it.`, "UNKNOWN_TENANT");
    }
    const shell: Shell = {
      user: { id: row.user_id, email: row.email, name: row.user_name },
      tenant: { id: row.tenant_id, slug: row.slug, name: row.tenant_name, plan: row.plan_name, features: row.features },
      role: row.role,
      tenants: row.tenants,
      csrf: csrfToken(sessionToken),
    };

    const flash = ctx.method === "GET" ? takeFlash(ctx) : undefined;
    ctx.state.page = { shell, acting, tx, flash };

    if (!SAFE.has(ctx.method)) {
      if (!ctx.is("multipart/form-data")) {
        await form(ctx, async () => {});
        const sent = (ctx.request.body as Record<string, unknown> | undefined)?._csrf ?? ctx.get("x-csrf-token");
        if (!validCsrfToken(sessionToken, sent)) {
          throw new UserError(
            403,
            "This form has expired or did not come from Attest. Reload the page and try again.",
            "CSRF",
          );
        }
      } else if (!validCsrfToken(sessionToken, ctx.get("x-csrf-token") || ctx.query._csrf)) {
        // Uploads send the token in a header (with JavaScript) or in the form's action URL.
        throw new UserError(
          403,
          "This upload did not come from an Attest page. Reload the page and try again.",
          "CSRF",
        );
      }
    }
    await next();
  };
}
