/**
 * An incident's evidence: upload (multipart, streamed to the blob store), download, delete.
 */
import type Router from "@koa/router";
import { UserError } from "../../../http/errors.ts";
import { receiveEvidence, sendEvidenceFile } from "../../routes/evidence.ts";
import { pageOf, redirectWithNotice, wantsFragment } from "../tenant-page.ts";
import {
  attempt,
  type IncidentPages,
  isDeleted,
  missingIncident,
  notFound,
  refusal,
  type SectionState,
  sendFragment,
  uuidParam,
} from "./common.ts";
import { loadIncident, readEvidence } from "./data.ts";

export function evidenceRoutes(router: Router, pages: IncidentPages): void {
  const { listBase, viewOf, options } = pages;

  // Multipart upload (field name free; the form uses "files"). CSRF token in ?_csrf= or X-CSRF-Token.
  router.post("/incidents/:id/evidence", async (ctx) => {
    const page = pageOf(ctx);
    const id = uuidParam(ctx, "id");
    const url = `${listBase(page.shell)}/${id}`;
    const json = ctx.accepts(["html", "json"]) === "json";
    const limits = { maxBytes: options.maxUploadBytes, dir: options.uploadDir };
    const result = await attempt(() =>
      receiveEvidence(page.tx, ctx.req, ctx.req.headers, id, limits, async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (incident.deleted_at) throw isDeleted();
      }),
    );
    if (!result.ok) {
      // JSON callers (attest.js) get the server's JSON error; a plain form goes back with a message.
      if (json || result.error.status === 404) throw result.error;
      return redirectWithNotice(ctx, `${url}#evidence`, result.error.message, "error");
    }
    if (json) {
      ctx.status = 201;
      ctx.body = { evidence: result.value };
      return;
    }
    const names = result.value.map((f) => `“${f.filename}”`).join(", ");
    redirectWithNotice(
      ctx,
      `${url}#evidence`,
      `Uploaded ${result.value.length === 1 ? "" : `${result.value.length} files: `}${names}.`,
    );
  });

  router.get("/incidents/:id/evidence/:evidenceId/download", async (ctx) => {
    const page = pageOf(ctx);
    const id = uuidParam(ctx, "id");
    const evidenceId = uuidParam(ctx, "evidenceId");
    await sendEvidenceFile(ctx, options.authPool, page.acting, evidenceId, id);
  });

  router.post("/incidents/:id/evidence/:evidenceId/delete", async (ctx) => {
    const page = pageOf(ctx);
    const { shell } = page;
    const id = uuidParam(ctx, "id");
    const evidenceId = uuidParam(ctx, "evidenceId");
    const url = `${listBase(shell)}/${id}`;
    const result = await attempt(() =>
      page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        if (!incident) throw notFound();
        if (incident.deleted_at) throw isDeleted();
        const file = await c.query<{ filename: string }>(
          "select filename from app_public.evidence where id = $1 and incident_id = $2",
          [evidenceId, id],
        );
        if (file.rowCount === 0) {
          throw new UserError(404, "That evidence file is not attached to this incident (any more).", "NOT_FOUND");
        }
        const deleted = await c.query("delete from app_public.evidence where id = $1 and incident_id = $2", [
          evidenceId,
          id,
        ]);
        if (deleted.rowCount === 0) throw refusal(shell, "delete evidence");
        return file.rows[0].filename;
      }),
    );
    const state: SectionState = result.ok
      ? { notice: { section: "evidence", kind: "notice", text: `Deleted “${result.value}”.` } }
      : { notice: { section: "evidence", kind: "error", text: result.error.message } };
    if (wantsFragment(ctx)) {
      const data = await page.tx(async (c) => {
        const incident = await loadIncident(c, id);
        return incident && { incident, evidence: await readEvidence(c, id) };
      });
      if (!data) throw notFound();
      return sendFragment(ctx, "partials/incident-evidence", viewOf(shell, data.incident, { ...data, ...state }), {
        status: result.ok ? 200 : result.error.status,
        changed: result.ok,
      });
    }
    if (!result.ok && missingIncident(result.error)) throw result.error;
    redirectWithNotice(ctx, `${url}#evidence`, state.notice?.text ?? "", result.ok ? "notice" : "error");
  });
}
