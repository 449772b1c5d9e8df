/**
 * Cross-site request forgery defence for cookie-authenticated requests: a state-changing request
 * (anything but GET/HEAD/OPTIONS) must come from our own origin, as the browser's Origin header
 * (or, without it, Sec-Fetch-Site) says. Requests authenticated by a bearer API token carry no
 * ambient credentials and are exempt.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type Koa from "koa";
import { UserError } from "./errors.ts";
import { credentialsOf } from "./request-context.ts";

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
    // The credential is decided first (as every handler will decide it): only a request that is
    // authenticated by a well-formed bearer token is exempt; anything else that may fall back to
    // the session cookie (no Authorization header, or a malformed one) must be same-origin.
    const bearer = credentialsOf(ctx).apiToken !== undefined;
    // GraphQL does its own check (src/graphql) so that it can answer in GraphQL's error format.
    if (!safe && !bearer && ctx.path !== "/graphql" && !isSameOrigin(ctx)) {
      throw new UserError(403, "This request did not come from an Attest page (cross-site request refused).", "CSRF");
    }
    await next();
  };
}

/**
 * The synchronizer token of a session: an HMAC of a fixed label keyed by the session secret.
 * Only someone who holds the (HttpOnly) session cookie can compute it, and it needs no storage.
 */
export function csrfToken(sessionToken: string): string {
  return createHmac("sha256", sessionToken).update("attest:csrf:v1").digest("base64url");
}

export function validCsrfToken(sessionToken: string, candidate: unknown): boolean {
  if (typeof candidate !== "string") return false;
  const expected = Buffer.from(csrfToken(sessionToken));
  const given = Buffer.from(candidate);
  return expected.length === given.length && timingSafeEqual(expected, given);
}
