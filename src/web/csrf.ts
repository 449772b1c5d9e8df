/**
 * Cross-site request forgery defence for cookie-authenticated requests: a state-changing request
 * (anything but GET/HEAD/OPTIONS) must come from our own origin, as the browser's Origin header
 * (or, without it, Sec-Fetch-Site) says. Requests authenticated by a bearer API token carry no
 * ambient credentials and are exempt.
 */
import type Koa from "koa";
import { UserError } from "./errors.ts";

/** This server's origin as the browser sees it (Koa 3's ctx.origin echoes the Origin header). */
export function ownOrigin(ctx: Koa.Context): string {
  return `${ctx.protocol}://${ctx.host}`;
}

export function isSameOrigin(ctx: Koa.Context): boolean {
  const origin = ctx.get("origin");
  if (origin) return origin === ownOrigin(ctx);
  const site = ctx.get("sec-fetch-site");
  return site === "same-origin";
}

export function requireSameOrigin(): Koa.Middleware {
  return async (ctx, next) => {
    const safe = ctx.method === "GET" || ctx.method === "HEAD" || ctx.method === "OPTIONS";
    const bearer = /^Bearer\s/i.test(ctx.get("authorization"));
    // GraphQL does its own check (src/graphql) so that it can answer in GraphQL's error format.
    if (!safe && !bearer && ctx.path !== "/graphql" && !isSameOrigin(ctx)) {
      throw new UserError(403, "This request did not come from an Attest page (cross-site request refused).", "CSRF");
    }
    await next();
  };
}
