/**
 * Overdue Milestones (/t/:slug/milestones/overdue): every open NIS2 reporting deadline of the
 * tenant's incidents (deleted ones left out) that has passed, most overdue first, and those due
 * in the next 72 hours, soonest first. Everyone in the tenant may see it; plans without the
 * nis2Timeline feature get the upgrade prompt. Row-level security decides which rows exist.
 */
import type Router from "@koa/router";
import type pg from "pg";
import { isoUtc } from "./settings-forms.ts";
import { hasFeature, pageOf, renderPage } from "./tenant-page.ts";

export const MILESTONE_NAMES: Record<string, string> = {
  early_warning: "Early Warning",
  full_notification: "Full Notification",
  final_report: "Final Report",
};

/** When each milestone falls due after the incident was opened (NIS2 Art. 23). */
export const MILESTONE_DEADLINES: Record<string, string> = {
  early_warning: "24 hours",
  full_notification: "72 hours",
  final_report: "1 month",
};

export interface MilestoneRow {
  id: string;
  kind: string;
  name: string;
  deadline: string;
  incident_id: string;
  incident_title: string;
  severity: string;
  incident_status: string;
  due_at: string;
  status: "overdue" | "pending";
  /** Seconds past the deadline (overdue) or left until it (pending); never negative. */
  seconds: number;
  /** "2 days 5 hours" etc. */
  distance: string;
}

/** A duration in words, at most two units: "3 days 4 hours", "5 hours 12 minutes", "less than a minute". */
export function humanDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const units: Array<[number, string]> = [
    [Math.floor(s / 86_400), "day"],
    [Math.floor((s % 86_400) / 3_600), "hour"],
    [Math.floor((s % 3_600) / 60), "minute"],
  ];
  const first = units.findIndex(([n]) => n > 0);
  if (first < 0) return "less than a minute";
  return units
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, unit]) => `${n} ${unit}${n === 1 ? "" : "s"}`)
    .join(" ");
}

/** Open milestones of live incidents that are overdue or due within 72 hours (as the user: RLS applies). */
export async function readMilestones(client: pg.ClientBase) {
  const { rows } = await client.query<{
    id: string;
    kind: string;
    incident_id: string;
    incident_title: string;
    severity: string;
    incident_status: string;
    due_at: string;
    status: "overdue" | "pending";
    seconds: string;
  }>(
    `select m.id, m.kind, m.incident_id, i.title as incident_title, i.severity, i.status as incident_status,
            ${isoUtc("m.due_at")} as due_at, app_public.nis2_milestones_status(m) as status,
            abs(floor(extract(epoch from (now() - m.due_at))))::bigint as seconds
     from app_public.nis2_milestones m
     join app_public.incidents i on i.tenant_id = m.tenant_id and i.id = m.incident_id
     where i.deleted_at is null and m.completed_at is null and m.due_at < now() + interval '72 hours'
     order by m.due_at, i.title, m.kind`,
  );
  const all: MilestoneRow[] = rows.map((r) => ({
    ...r,
    name: MILESTONE_NAMES[r.kind] ?? r.kind,
    deadline: MILESTONE_DEADLINES[r.kind] ?? "",
    seconds: Number(r.seconds),
    distance: humanDuration(Number(r.seconds)),
  }));
  return {
    overdue: all.filter((m) => m.status === "overdue"),
    dueSoon: all.filter((m) => m.status === "pending"),
  };
}

export function milestoneRoutes(router: Router): void {
  router.get("/milestones/overdue", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    if (!hasFeature(shell, "nis2Timeline")) {
      return renderPage(
        ctx,
        "pages/upgrade",
        { feature: "NIS2 timeline" },
        { title: "Overdue Milestones", nav: "overdue", status: 403 },
      );
    }
    const milestones = await page.tx((c) => readMilestones(c));
    renderPage(ctx, "pages/overdue-milestones", milestones, { title: "Overdue Milestones", nav: "overdue" });
  });
}
