/**
 * An incident's NIS2 reporting: turning it on or off, and completing its milestones (early
 * warning, full notification, final report), each with optional notes.
 */
import type Router from "@koa/router";
import type Koa from "koa";
import { UserError } from "../../../http/errors.ts";
import { pageOf, redirectWithNotice, wantsFragment } from "../tenant-page.ts";
import {
  attempt,
  field,
  formOf,
  helpers,
  type IncidentPages,
  isDeleted,
  missingIncident,
  multiline,
  notFound,
  refusal,
  type SectionState,
  sendFragment,
  uuidParam,
} from "./common.ts";
import { loadIncident, readMilestones } from "./data.ts";

export function nis2Routes(router: Router, pages: IncidentPages): void {
  const { listBase, viewOf, showIncident } = pages;

  /** Answers a NIS2 post: the section for htmx, else a redirect (or the page with the form's error). */
  const answerNis2 = async (ctx: Koa.Context, id: string, state: SectionState, ok: boolean, status: number) => {
    const page = pageOf(ctx);
    const url = `${listBase(page.shell)}/${id}`;
    if (wantsFragment(ctx)) {
      const data = await page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        return incident && { incident, milestones: await readMilestones(c, id) };
      });
      if (!data) throw notFound();
      return sendFragment(ctx, "partials/incident-nis2", viewOf(page.shell, data.incident, { ...data, ...state }), {
        status,
        changed: ok,
      });
    }
    if (!ok && state.form) return showIncident(ctx, id, state, status);
    redirectWithNotice(ctx, `${url}#nis2`, state.notice?.text ?? "", ok ? "notice" : "error");
  };

  // Turns NIS2 reporting on or off: enabled=true|false.
  router.post("/incidents/:id/nis2", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const id = uuidParam(ctx, "id");
    const enabled = ["true", "1", "on"].includes(field(formOf(ctx).enabled) ?? "");
    const result = await attempt(() =>
      page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (incident.deleted_at) throw isDeleted();
        if (incident.nis2_enabled === enabled) return false;
        const updated = await c.query(
          "update app_public.incidents set nis2_enabled = $2 where id = $1 and deleted_at is null returning id",
          [id, enabled],
        );
        if (updated.rowCount === 0) throw refusal(shell, "change incidents");
        return true;
      }),
    );
    if (!result.ok && result.error.status === 404) throw result.error;
    const text = result.ok
      ? enabled
        ? "NIS2 reporting is on: the early warning, full notification and final report deadlines are below."
        : "NIS2 reporting is off. Its milestones are kept and come back if you turn it on again."
      : result.error.message;
    await answerNis2(
      ctx,
      id,
      { notice: { section: "nis2", kind: result.ok ? "notice" : "error", text } },
      result.ok,
      result.ok ? 200 : result.error.status,
    );
  });

  // Completes a milestone, with optional notes.
  router.post("/incidents/:id/milestones/:milestoneId/complete", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const id = uuidParam(ctx, "id");
    const milestoneId = uuidParam(ctx, "milestoneId");
    const notes = multiline(field(formOf(ctx).notes) ?? "");
    const result = await attempt(() =>
      page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (incident.deleted_at) throw isDeleted();
        const found = await c.query<{ kind: string; completed_at: Date | null }>(
          "select kind, completed_at from app_public.nis2_milestones where id = $1 and incident_id = $2",
          [milestoneId, id],
        );
        if (found.rowCount === 0) throw new UserError(404, "This incident has no such milestone.", "NOT_FOUND");
        const label = helpers.label("milestone", found.rows[0].kind);
        if (found.rows[0].completed_at) throw new UserError(409, `The ${label.toLowerCase()} is already completed.`);
        try {
          await c.query("select app_public.complete_milestone($1, $2)", [milestoneId, notes.trim() ? notes : null]);
        } catch (error) {
          if ((error as { code?: string }).code === "P0002") throw refusal(shell, "complete milestones");
          throw error;
        }
        return label;
      }),
    );
    if (!result.ok && missingIncident(result.error)) throw result.error;
    if (result.ok) {
      return answerNis2(
        ctx,
        id,
        { notice: { section: "nis2", kind: "notice", text: `${result.value} marked complete.` } },
        true,
        200,
      );
    }
    await answerNis2(
      ctx,
      id,
      { form: { section: "nis2", id: milestoneId, values: { notes }, error: result.error.message } },
      false,
      result.error.status,
    );
  });
}
