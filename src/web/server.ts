/**
 * The HTTP server: a Koa 3 app with request ids, error pages and the health check.
 * Owns routing and the HTTP surface; database rules live in PostgreSQL, not here.
 */
import { randomUUID } from "node:crypto";
import http from "node:http";
import Koa from "koa";
import type pg from "pg";
import type { Logger } from "../log.ts";

export interface HttpError extends Error {
  status?: number;
  expose?: boolean;
}

export function createApp(options: { authPool: pg.Pool; log: Logger }): Koa {
  const app = new Koa();
  app.proxy = process.env.ATTEST_TRUST_PROXY === "true";

  // Request id (returned as a header and written in the log line) and error handling.
  app.use(async (ctx, next) => {
    const requestId = randomUUID();
    ctx.state.requestId = requestId;
    ctx.set("X-Request-Id", requestId);
    const started = performance.now();
    try {
      await next();
    } catch (caught) {
      const error = caught as HttpError;
      const status = error.status && error.status >= 400 && error.status < 600 ? error.status : 500;
      ctx.status = status;
      ctx.type = "text/plain; charset=utf-8";
      ctx.body =
        status < 500 && error.expose !== false
          ? error.message
          : `Something went wrong on our side. Please try again; if it keeps happening, quote request id ${requestId}.`;
      if (status >= 500) options.log.error("request failed", { requestId, error: error.stack ?? String(error) });
    } finally {
      options.log.info(`${ctx.method} ${ctx.path} ${ctx.status}`, {
        requestId,
        ms: Math.round(performance.now() - started),
      });
    }
  });

  app.use(async (ctx, next) => {
    if (ctx.path !== "/healthz") return next();
    try {
      await withTimeout(options.authPool.query("select 1"), 2000);
      ctx.body = { status: "ok", database: "reachable" };
    } catch {
      ctx.status = 503;
      ctx.body = { status: "unavailable", database: "unreachable" };
    }
  });

  return app;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error("timed out")), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

export async function startServer(app: Koa, host: string, port: number): Promise<RunningServer> {
  const server = http.createServer();
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
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 5000).unref();
      }),
  };
}
