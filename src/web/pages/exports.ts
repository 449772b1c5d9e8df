/**
 * Evidence pack downloads: the ZIP or the PDF report on its own, for the tenant's owners and
 * admins, streamed from the database and recorded by it as export.downloaded (when the download
 * starts: see streamDownload).
 * Pages: /t/:slug/exports/:exportId/pack.zip and …/report.pdf (session);
 * API: /api/exports/:exportId/pack.zip and …/report.pdf (API token or session + X-Tenant).
 */
import type Router from "@koa/router";
import type Koa from "koa";
import type pg from "pg";
import type { ActingContext } from "../../db/context.ts";
import { streamDownload } from "../../http/download.ts";
import { UserError } from "../../http/errors.ts";
import { pageOf } from "./tenant-page.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function safeName(title: string): string {
  return (
    title
      .replace(/[^\p{L}\p{N}]+/gu, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 60) || "incident"
  );
}

export async function sendExportFile(
  ctx: Koa.Context,
  pool: pg.Pool,
  context: ActingContext,
  exportId: string,
  kind: "zip" | "pdf",
): Promise<void> {
  if (!UUID.test(exportId)) throw new UserError(404, "No such evidence pack.", "NOT_FOUND");
  await streamDownload(ctx, pool, context, async (client) => {
    const { rows } = await client.query<{ created_at: Date; title: string; size: string }>(
      `select x.created_at, i.title,
              case $2 when 'pdf' then app_public.exports_pdf_size(x) else app_public.exports_zip_size(x) end as size
       from app_hidden.start_export_download($1, $2) x
       join app_public.incidents i on i.tenant_id = x.tenant_id and i.id = x.incident_id`,
      [exportId, kind],
    );
    const pack = rows[0];
    if (!pack?.created_at) throw new UserError(404, "No such evidence pack in this tenant.", "NOT_FOUND");
    const stamp = pack.created_at.toISOString().slice(0, 10);
    return {
      filename: `evidence-pack-${safeName(pack.title)}-${stamp}.${kind}`,
      contentType: kind === "pdf" ? "application/pdf" : "application/zip",
      size: pack.size,
      chunk: async (c, seq) =>
        (
          await c.query<{ data: Buffer | null }>("select app_hidden.export_chunk($1, $2, $3) as data", [
            exportId,
            kind,
            seq,
          ])
        ).rows[0]?.data ?? null,
    };
  });
}

export function exportRoutes(router: Router, options: { authPool: pg.Pool }): void {
  for (const [file, kind] of [
    ["pack.zip", "zip"],
    ["report.pdf", "pdf"],
  ] as const) {
    router.get(`/exports/:exportId/${file}`, async (ctx) => {
      await sendExportFile(ctx, options.authPool, pageOf(ctx).acting, ctx.params.exportId, kind);
    });
  }
}
