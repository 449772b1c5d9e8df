/**
 * Sign-in pages: GET/POST /login, POST /logout. The session secret travels only in an HttpOnly,
 * SameSite=Lax cookie.
 */
import { bodyParser } from "@koa/bodyparser";
import Router from "@koa/router";
import type pg from "pg";
import { SESSION_COOKIE, signIn, signOut } from "../../auth/sign-in.ts";
import { actingContext, credentialsOf } from "../../http/request-context.ts";
import { render } from "../render.ts";

/** Only local paths are followed after sign-in (no open redirects). */
export function safeNext(next: unknown): string {
  return typeof next === "string" && /^\/(?!\/)[^\\\s]*$/.test(next) ? next : "/";
}

export function authRoutes(options: {
  authPool: pg.Pool;
  sessionDays?: number;
  /** How the slow-down after failed sign-ins waits (tests pass one that does not). */
  sleep?: (ms: number) => Promise<void>;
}): Router {
  const router = new Router();
  const form = bodyParser({ enableTypes: ["form"], formLimit: "16kb" });

  router.get("/login", (ctx) => {
    ctx.type = "html";
    ctx.body = render("login", {
      next: safeNext(ctx.query.next),
      notice: ctx.query.signed_out !== undefined ? "You are signed out." : undefined,
    });
  });

  router.post("/login", form, async (ctx) => {
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    const email = typeof body.email === "string" ? body.email.slice(0, 320) : "";
    const password = typeof body.password === "string" ? body.password.slice(0, 1024) : "";
    const next = safeNext(body.next);
    const page = (status: number, error: string) => {
      ctx.status = status;
      ctx.type = "html";
      ctx.body = render("login", { error, email, next });
    };
    if (!email || !password) return page(400, "Enter your email and password.");
    const result = await signIn(
      options.authPool,
      actingContext(ctx, { surface: "web", credentials: {} }),
      email,
      password,
      options.sleep,
    );
    if (!result.ok && result.reason === "throttled") {
      ctx.set("Retry-After", String(result.retryAfterSeconds));
      return page(429, "Too many failed sign-ins. Wait 15 minutes and try again.");
    }
    if (!result.ok) return page(401, "Email or password is incorrect.");
    ctx.cookies.set(SESSION_COOKIE, result.sessionToken, {
      httpOnly: true,
      sameSite: "lax",
      secure: ctx.secure,
      path: "/",
      maxAge: (options.sessionDays ?? 14) * 24 * 3600 * 1000,
      overwrite: true,
    });
    ctx.redirect(next);
  });

  router.post("/logout", async (ctx) => {
    const { sessionToken } = credentialsOf(ctx);
    if (sessionToken) await signOut(options.authPool, actingContext(ctx, { surface: "web" }), sessionToken);
    ctx.cookies.set(SESSION_COOKIE, null, { path: "/", overwrite: true });
    ctx.redirect("/login?signed_out");
  });

  return router;
}
