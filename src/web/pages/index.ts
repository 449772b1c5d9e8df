/**
 * The workspace pages under /t/:slug/…, all behind the tenant-page frame (sign-in, tenant,
 * role, CSRF). Each page module adds its routes here.
 */
import Router from "@koa/router";
import type pg from "pg";
import { auditEntryRoutes } from "./audit-entry.ts";
import { auditExportRoutes } from "./audit-export.ts";
import { auditLogRoutes } from "./audit-log.ts";
import { exportRoutes } from "./exports.ts";
import { incidentRoutes } from "./incidents/index.ts";
import { memberRoutes } from "./members.ts";
import { milestoneRoutes } from "./milestones.ts";
import { tenantPages } from "./tenant-page.ts";
import { tokenRoutes } from "./tokens.ts";
import { webhookRoutes } from "./webhooks.ts";

export interface WorkspaceOptions {
  authPool: pg.Pool;
  visitorRole: string;
  maxUploadBytes: number;
  /** Where uploads wait until all their files have arrived (default: os.tmpdir()). */
  uploadDir?: string;
  /** ATTEST_WEBHOOKS_ALLOW_PRIVATE: webhooks may point at private addresses. */
  webhooksAllowPrivate?: boolean;
}

export function workspaceRoutes(options: WorkspaceOptions): Router {
  const router = new Router({ prefix: "/t/:slug" });
  router.use(tenantPages(options));
  router.get("/", (ctx) => ctx.redirect(`/t/${encodeURIComponent(ctx.params.slug)}/incidents`));
  auditExportRoutes(router, options); // before the audit log's own /audit/… routes
  auditLogRoutes(router);
  auditEntryRoutes(router);
  incidentRoutes(router, options);
  milestoneRoutes(router);
  webhookRoutes(router, { allowPrivate: options.webhooksAllowPrivate ?? false });
  memberRoutes(router);
  tokenRoutes(router);
  exportRoutes(router, options);
  return router;
}
