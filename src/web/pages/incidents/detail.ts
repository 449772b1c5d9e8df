/**
 * The incident page (/t/:slug/incidents/:id): its fields edited in place, the sections that reload
 * themselves, soft delete and restore, and requesting an evidence pack.
 */
import type Router from "@koa/router";
import type Koa from "koa";
import type pg from "pg";
import { UserError } from "../../../http/errors.ts";
import { hasFeature, isManager, pageOf, redirectWithNotice, wantsFragment } from "../tenant-page.ts";
import {
  attempt,
  type Can,
  FIELD_KEYS,
  FIELDS,
  type FieldKey,
  field,
  formOf,
  type IncidentPages,
  isDeleted,
  multiline,
  notFound,
  permissions,
  refusal,
  type SectionState,
  sendFragment,
  uuidParam,
} from "./common.ts";
import { type IncidentRow, loadIncident, readEvidence, readExports, readTimeline } from "./data.ts";

export function detailRoutes(router: Router, pages: IncidentPages): void {
  const { listBase, viewOf, incidentOf, showIncident } = pages;

  router.get("/incidents/:id", async (ctx) => {
    const id = uuidParam(ctx, "id");
    const edit = field(ctx.query.edit);
    const editing = edit && (FIELD_KEYS as readonly string[]).includes(edit) ? edit : undefined;
    await showIncident(ctx, id, editing ? { form: { section: "field", field: editing } } : {});
  });

  // Edits any of the FIELD_KEYS that the form sends (usually one).
  router.post("/incidents/:id", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const id = uuidParam(ctx, "id");
    const body = formOf(ctx);
    const posted = FIELD_KEYS.filter((k) => field(body[k]) !== undefined);
    if (posted.length === 0) {
      throw new UserError(400, `Nothing to save: send one of ${FIELD_KEYS.join(", ")}.`, "BAD_USER_INPUT");
    }
    const typed: Record<string, string> = Object.fromEntries(posted.map((k) => [k, field(body[k]) ?? ""]));
    const stored = (k: FieldKey): string | null => {
      const raw = typed[k];
      if (k === "title") return raw.trim();
      if (k === "description") return multiline(raw);
      if (k === "root_cause" || k === "lessons_learned") return raw.trim() === "" ? null : multiline(raw);
      return raw;
    };
    const result = await attempt(() =>
      page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (incident.deleted_at) throw isDeleted();
        const changed = posted.filter((k) => (incident[k] ?? null) !== stored(k));
        if (changed.length > 0) {
          // Column names come from FIELD_KEYS only.
          const sets = changed.map((k, i) => `${k} = $${i + 2}`).join(", ");
          const updated = await c.query(
            `update app_public.incidents set ${sets} where id = $1 and deleted_at is null returning id`,
            [id, ...changed.map(stored)],
          );
          if (updated.rowCount === 0) throw refusal(shell, "change incidents");
        }
        return changed;
      }),
    );
    const key = posted[0];
    const url = `${listBase(shell)}/${id}`;
    if (!result.ok) {
      if (result.error.status === 404) throw result.error;
      const form = { section: "field", field: key, values: typed, error: result.error.message };
      if (wantsFragment(ctx)) {
        const incident = await incidentOf(ctx, id);
        return sendFragment(ctx, "partials/incident-field", viewOf(shell, incident, { key, form }), {
          status: result.error.status,
        });
      }
      return showIncident(ctx, id, { form }, result.error.status);
    }
    const changed = result.value;
    if (wantsFragment(ctx)) {
      const incident = await incidentOf(ctx, id);
      return sendFragment(
        ctx,
        "partials/incident-field",
        viewOf(shell, incident, { key, saved: changed.length > 0 ? key : "unchanged" }),
        { changed: changed.length > 0 },
      );
    }
    const names = changed.map((k) => FIELDS[k].label.toLowerCase()).join(", ");
    redirectWithNotice(ctx, `${url}#field-${key}`, changed.length > 0 ? `Saved the ${names}.` : "Nothing changed.");
  });

  // One field, shown or (?edit=1) as its form: what the Edit and Cancel links load with htmx.
  router.get("/incidents/:id/fields/:field", async (ctx) => {
    const { shell } = pageOf(ctx);
    const id = uuidParam(ctx, "id");
    const key = ctx.params.field as FieldKey;
    if (!(FIELD_KEYS as readonly string[]).includes(key)) throw new UserError(404, "No such field.", "NOT_FOUND");
    const edit = field(ctx.query.edit) === "1";
    const url = `${listBase(shell)}/${id}`;
    if (!wantsFragment(ctx)) return ctx.redirect(`${url}${edit ? `?edit=${key}` : ""}#field-${key}`);
    const incident = await incidentOf(ctx, id);
    sendFragment(
      ctx,
      "partials/incident-field",
      viewOf(shell, incident, { key, form: edit ? { section: "field", field: key } : undefined }),
    );
  });

  // Parts of the page that reload themselves (after htmx changes elsewhere, or polling).
  const sectionRoute = (
    name: string,
    view: string,
    anchor: string,
    load: (c: pg.PoolClient, incident: IncidentRow, can: Can) => Promise<Record<string, unknown>>,
  ) => {
    router.get(`/incidents/:id/${name}`, async (ctx) => {
      const page = pageOf(ctx);
      const id = uuidParam(ctx, "id");
      if (!wantsFragment(ctx)) return ctx.redirect(`${listBase(page.shell)}/${id}#${anchor}`);
      const data = await page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) return undefined;
        return { incident, ...(await load(c, incident, permissions(page.shell, incident))) };
      });
      if (!data) throw notFound();
      sendFragment(ctx, view, viewOf(page.shell, data.incident, data));
    });
  };
  sectionRoute("summary", "partials/incident-summary", "main", async () => ({}));
  sectionRoute("timeline", "partials/incident-timeline", "timeline", async (c, incident, can) => ({
    timeline: can.timeline ? await readTimeline(c, incident.id) : [],
  }));
  sectionRoute("evidence", "partials/incident-evidence", "evidence", async (c, incident) => ({
    evidence: await readEvidence(c, incident.id),
  }));
  sectionRoute("exports", "partials/incident-exports", "exports", async (c, incident, can) => ({
    exports: can.seeExports ? await readExports(c, incident.id) : [],
  }));

  // Soft delete and restore (plain forms: they lead to another page): the same steps, reversed.
  const softDelete = (deleting: boolean) => async (ctx: Koa.Context) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const id = uuidParam(ctx, "id");
    const url = `${listBase(shell)}/${id}`;
    const result = await attempt(() =>
      page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (deleting && incident.deleted_at)
          throw new UserError(409, "This incident is already deleted.", "INCIDENT_DELETED");
        if (!deleting && !incident.deleted_at) throw new UserError(409, "This incident is not deleted.", "NOT_DELETED");
        try {
          await c.query(`select app_public.${deleting ? "delete_incident" : "restore_incident"}($1)`, [id]);
        } catch (error) {
          // The incident is there and in the right state: only the row policy can have said no.
          if ((error as { code?: string }).code === "P0002") {
            throw refusal(shell, deleting ? "delete incidents" : "restore incidents");
          }
          throw error;
        }
        return incident;
      }),
    );
    if (!result.ok) {
      if (result.error.status === 404) throw result.error;
      return redirectWithNotice(ctx, url, result.error.message, "error");
    }
    if (deleting) {
      redirectWithNotice(
        ctx,
        listBase(shell),
        `Deleted “${result.value.title}”. It is kept under Deleted incidents, where it can be restored.`,
      );
    } else {
      redirectWithNotice(ctx, url, `Restored “${result.value.title}”.`);
    }
  };
  router.post("/incidents/:id/delete", softDelete(true));
  router.post("/incidents/:id/restore", softDelete(false));

  // -- Evidence packs -----------------------------------------------------------------------------

  router.post("/incidents/:id/exports", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const id = uuidParam(ctx, "id");
    const url = `${listBase(shell)}/${id}`;
    const result = await attempt(() =>
      page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (incident.deleted_at) throw isDeleted();
        await c.query("insert into app_public.exports (incident_id) values ($1)", [id]);
      }),
    );
    let error = result.ok ? undefined : result.error;
    if (error?.status === 404) throw error;
    if (error?.code === "FORBIDDEN") {
      // The row policy wants an owner/admin on a plan with evidencePacks: say which one is missing.
      error = !hasFeature(shell, "evidencePacks")
        ? new UserError(
            402,
            `Evidence packs are not included in the ${shell.tenant.plan} plan. Upgrade to a plan with evidence packs to request one.`,
            "PLAN_REQUIRED",
          )
        : refusal(shell, "request evidence packs (owners and admins can)");
    }
    const state: SectionState = {
      notice: error
        ? { section: "exports", kind: "error", text: error.message }
        : {
            section: "exports",
            kind: "notice",
            text: "Evidence pack requested. It is queued and will be built in the background.",
          },
    };
    if (wantsFragment(ctx)) {
      const data = await page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        return incident && { incident, exports: isManager(shell) ? await readExports(c, id) : [] };
      });
      if (!data) throw notFound();
      return sendFragment(ctx, "partials/incident-exports", viewOf(shell, data.incident, { ...data, ...state }), {
        status: error?.status ?? 200,
        changed: !error,
      });
    }
    redirectWithNotice(ctx, `${url}#exports`, state.notice?.text ?? "", error ? "error" : "notice");
  });
}
