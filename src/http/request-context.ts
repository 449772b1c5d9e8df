/**
 * From an HTTP request to the database context: the credentials it carries (session cookie or
 * bearer API token), the tenant it asks for, and where it comes from. Owns nothing else; whether
 * those credentials are any good is the database's call.
 */
import type Koa from "koa";
import { SESSION_COOKIE } from "../auth/sign-in.ts";
import type { ActingContext, Surface } from "../db/context.ts";

export interface Credentials {
  sessionToken?: string;
  apiToken?: string;
}

export function credentialsOf(ctx: Koa.Context): Credentials {
  const authorization = ctx.get("authorization");
  const bearer = /^Bearer\s+(\S+)$/i.exec(authorization)?.[1];
  if (bearer) return { apiToken: bearer };
  const cookie = ctx.cookies.get(SESSION_COOKIE);
  return cookie ? { sessionToken: cookie } : {};
}

export function actingContext(
  ctx: Koa.Context,
  options: { role?: string; surface: Surface; tenant?: string; credentials?: Credentials },
): ActingContext {
  const credentials = options.credentials ?? credentialsOf(ctx);
  return {
    role: options.role,
    sessionToken: credentials.sessionToken,
    apiToken: credentials.apiToken,
    tenant: options.tenant,
    requestId: ctx.state.requestId as string,
    ip: ctx.ip || undefined,
    userAgent: ctx.get("user-agent").slice(0, 500) || undefined,
    surface: options.surface,
    webhooksAllowPrivate: ctx.state.webhooksAllowPrivate === true || undefined,
  };
}
