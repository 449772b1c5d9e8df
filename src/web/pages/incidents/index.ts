/**
 * The Incidents pages (/t/:slug/incidents): the list (status chips with counts, a title search
 * and a "created within" filter, all in the URL; newest first, 20 per page; deleted incidents on
 * request, to restore them), creating an incident, and the incident page: fields edited in
 * place, soft delete and restore, evidence upload/download/delete, NIS2 reporting and its
 * milestones, evidence pack requests and the incident's own audit timeline.
 * Every form works as a plain POST followed by a redirect (or the page again with the error and
 * what was typed); htmx swaps just the part that changed. The database decides who may do what
 * (RLS, triggers, functions); the role and plan checks here only choose what to show and how to
 * word a refusal.
 * One file a concern: list.ts, detail.ts (fields, sections, delete and restore, pack requests),
 * evidence.ts, nis2.ts; what they share is in common.ts, what the incident page reads in data.ts.
 */
import type Router from "@koa/router";
import { type IncidentRouteOptions, incidentPages } from "./common.ts";
import { detailRoutes } from "./detail.ts";
import { evidenceRoutes } from "./evidence.ts";
import { listRoutes } from "./list.ts";
import { nis2Routes } from "./nis2.ts";

export function incidentRoutes(router: Router, options: IncidentRouteOptions): void {
  const pages = incidentPages(options);
  listRoutes(router, pages);
  detailRoutes(router, pages);
  evidenceRoutes(router, pages);
  nis2Routes(router, pages);
}
