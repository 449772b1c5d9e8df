/**
 * The HTTP server: a Koa 3 app with request ids, security headers, error handling, the health
 * check, sign-in, the evidence endpoints and GraphQL.
 * Owns routing and the HTTP surface; what a user may see or change is decided by PostgreSQL.
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import Koa from "koa";
import type pg from "pg";
import { GRAPHIQL_PATH, GRAPHQL_PATH } from "../graphql/index.ts";
import { checkedTokens } from "../http/checked-tokens.ts";
import { requireSameOrigin } from "../http/csrf.ts";
import { fromDatabaseError, UserError } from "../http/errors.ts";
import type { Logger } from "../log.ts";
import { workspaceRoutes } from "./pages/index.ts";
import { renderPage, wantsFragment } from "./pages/tenant-page.ts";
import { render } from "./render.ts";
import { authRoutes } from "./routes/auth.ts";
import { evidenceRoutes } from "./routes/evidence.ts";
import { homeRoutes } from "./routes/home.ts";
import { signingKeyRoutes } from "./routes/keys.ts";

export interface AppOptions {
  authPool: pg.Pool;
  visitorRole: string;
  log: Logger;
  maxUploadBytes: number;
  /** Where uploads wait until all their files have arrived (default: os.tmpdir()). */
  uploadDir?: string;
  trustProxy?: boolean;
  webhooksAllowPrivate?: boolean;
  /** How the slow-down after failed sign-ins waits (tests pass one that does not). */
  signInSleep?: (ms: number) => Promise<void>;
}

const staticDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "static");
const htmxFile = fileURLToPath(new URL("../../node_modules/htmx.org/dist/htmx.min.js", import.meta.url));
const STATIC_TYPES: Record<string, string> = {
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
};

function wantsJson(ctx: Koa.Context): boolean {
  return ctx.path.startsWith("/api/") || ctx.path === GRAPHQL_PATH || ctx.accepts(["html", "json"]) === "json";
}

export function createApp(options: AppOptions): Koa {
  const app = new Koa();
  app.proxy = options.trustProxy ?? false;

  // Request id (returned as a header and written in the log line), security headers, errors.
  app.use(async (ctx, next) => {
    const requestId = randomUUID();
    ctx.state.requestId = requestId;
    // Read by actingContext: the database refuses webhook URLs to private addresses unless allowed.
    ctx.state.webhooksAllowPrivate = options.webhooksAllowPrivate === true;
    ctx.set("X-Request-Id", requestId);
    ctx.set("X-Content-Type-Options", "nosniff");
    ctx.set("Referrer-Policy", "same-origin");
    ctx.set("X-Frame-Options", "DENY");
    if (ctx.path !== "/graphiql") {
      ctx.set(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
      );
    }
    const started = performance.now();
    try {
      await next();
    } catch (caught) {
      const error = (caught instanceof UserError ? caught : fromDatabaseError(caught)) ?? caught;
      const known = error instanceof UserError;
      const status = known ? error.status : ((caught as { status?: number }).status ?? 500);
      const expose = known || (status < 500 && (caught as { expose?: boolean }).expose !== false);
      const message = expose
        ? (error as Error).message
        : `Something went wrong on our side. Please try again; if it keeps happening, quote request id ${requestId}.`;
      ctx.status = status;
      if (wantsJson(ctx)) {
        ctx.body = {
          error: { code: known ? error.code : status < 500 ? "BAD_REQUEST" : "INTERNAL", message, requestId },
        };
      } else if (ctx.state.page && wantsFragment(ctx)) {
        // htmx swaps error responses into the element that asked: answer with a message, not a page.
        ctx.type = "html";
        ctx.body = render("partials/error-inline", { message, requestId, status });
      } else if (ctx.state.page) {
        renderPage(
          ctx,
          "pages/error",
          { heading: headingFor(status), message, requestId },
          { title: headingFor(status), nav: "", status },
        );
      } else {
        ctx.type = "html";
        ctx.body = render("error", { heading: headingFor(status), message, requestId });
      }
      if (status >= 500)
        options.log.error("request failed", { requestId, error: (caught as Error).stack ?? String(caught) });
    } finally {
      options.log.info(`${ctx.method} ${ctx.path} ${ctx.status}`, {
        requestId,
        ms: Math.round(performance.now() - started),
      });
    }
  });

  // PostgreSQL stores no NUL characters in text: refuse them in the address once, for every route.
  app.use(async (ctx, next) => {
    if (/%00|\0/i.test(ctx.url)) {
      throw new UserError(400, "The address contains a NUL character (%00), which Attest does not accept.");
    }
    await next();
  });

  app.use(async (ctx, next) => {
    if (ctx.path !== "/healthz") return next();
    // Within 5 s: on a busy machine a new connection alone can take a second or two.
    try {
      await withTimeout(options.authPool.query("select 1"), HEALTH_TIMEOUT_MS);
      ctx.body = { status: "ok", database: "reachable" };
    } catch (error) {
      options.log.warn("health check: the database did not answer", { error: (error as Error).message });
      ctx.status = 503;
      ctx.body = { status: "unavailable", database: "unreachable" };
    }
  });

  app.use(async (ctx, next) => {
    if (ctx.path === "/favicon.ico") return ctx.redirect("/static/favicon.svg");
    if (ctx.method !== "GET" || !ctx.path.startsWith("/static/")) return next();
    const name = ctx.path.slice("/static/".length);
    const file =
      name === "htmx.min.js" ? htmxFile : /^[a-z0-9-]+\.(css|js|svg)$/.test(name) ? path.join(staticDir, name) : null;
    if (!file) return next();
    try {
      ctx.body = await fs.readFile(file);
      ctx.type = STATIC_TYPES[path.extname(file)] ?? "application/octet-stream";
      ctx.set("Cache-Control", "public, max-age=300");
    } catch {
      return next();
    }
  });

  // Errors Koa reports outside the request's own handling (a response stream that failed or was
  // cut off by the client): one line with the request id, never a stack trace on the console.
  app.on("error", (error: Error & { code?: string; status?: number }, ctx?: Koa.Context) => {
    const requestId = ctx?.state?.requestId as string | undefined;
    const fields = { requestId, error: error.message, code: error.code };
    if (error.code === "ERR_STREAM_PREMATURE_CLOSE" || error.code === "ECONNRESET" || error.code === "EPIPE") {
      options.log.debug("client went away during the response", fields);
    } else if ((error.status ?? 500) >= 500) {
      options.log.warn("response failed", fields);
    }
  });

  // The pages' middleware. GraphQL's two paths (grafserv's, mounted after these) pass them by:
  // none of them answers there, and matching every page route cost each API request ~2% of its
  // server time.
  const page =
    (middleware: (ctx: never, next: Koa.Next) => unknown): Koa.Middleware =>
    (ctx, next) =>
      ctx.path === GRAPHQL_PATH || ctx.path === GRAPHIQL_PATH ? next() : (middleware as Koa.Middleware)(ctx, next);
  // A write through the pages or the upload API may revoke a token, a membership or a plan:
  // GraphQL checks every token again (checked-tokens.ts), from now on and once the write is done.
  app.use(
    page(async (ctx: Koa.Context, next: Koa.Next) => {
      if (ctx.method === "GET" || ctx.method === "HEAD") return next();
      checkedTokens.forget();
      try {
        await next();
      } finally {
        checkedTokens.forget();
      }
    }),
  );
  app.use(page(requireSameOrigin()));
  const auth = authRoutes({ authPool: options.authPool, sleep: options.signInSleep });
  app.use(page(auth.routes())).use(page(auth.allowedMethods()));
  app.use(page(signingKeyRoutes(options).routes()));
  const home = homeRoutes(options);
  app.use(page(home.routes()));
  const workspace = workspaceRoutes(options);
  app.use(page(workspace.routes())).use(page(workspace.allowedMethods()));
  const evidence = evidenceRoutes(options);
  app.use(page(evidence.routes())).use(page(evidence.allowedMethods()));
  return app;
}

function headingFor(status: number): string {
  if (status === 404) return "Not found";
  if (status === 403) return "Not allowed";
  if (status === 413) return "Too large";
  return status < 500 ? "Please check your request" : "Something went wrong";
}

const HEALTH_TIMEOUT_MS = 5000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export interface RunningServer {
  url: string;
  server: http.Server;
  close(): Promise<void>;
}

/** Listens; `beforeListen` may add handlers that need the server (GraphQL) before Koa's callback is taken. */
export async function startServer(
  app: Koa,
  host: string,
  port: number,
  beforeListen?: (server: http.Server) => Promise<void>,
): Promise<RunningServer> {
  const server = http.createServer();
  await beforeListen?.(server);
  server.on("request", app.callback());
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  const shownHost = host === "0.0.0.0" || host === "::" ? "localhost" : host;
  return {
    url: `http://${shownHost}:${actualPort}`,
    server,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 5000).unref();
      }),
  };
}
