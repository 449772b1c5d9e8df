/**
 * Builds the evidence pack of one export request from the database: the PDF report and the
 * signed ZIP, both stored as blobs. Everything is written in ONE transaction, so a build that dies
 * half-way leaves nothing behind, and the export becomes `ready` (pointing at both blobs) only in
 * that same commit. Memory stays flat: evidence is read and the ZIP written 1 MiB at a time.
 * Progress goes to the export row through a separate connection, so people can watch it.
 * Runs as the owner role (the worker); it reads only the export's own tenant.
 */
import { readFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import type pg from "pg";
import { activeSigningKey } from "../audit/keys.ts";
import { BLOB_CHUNK_BYTES, readBlob, writeBlob } from "../db/blobs.ts";
import type { ChainLink, EntryLine, IncidentFile } from "./format.ts";
import { renderReportPdf } from "./report-pdf.ts";
import { evidencePath, writePack } from "./writer.ts";

export const TOOL_VERSION = (
  JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }
).version;

const MILESTONE_NAMES: Record<string, string> = {
  early_warning: "Early Warning",
  full_notification: "Full Notification",
  final_report: "Final Report",
};

export interface BuildResult {
  status: "ready" | "skipped";
  zipBytes?: number;
  pdfBytes?: number;
}

const iso = (value: Date | null) => (value ? value.toISOString() : null);

/** Reads the chain links of a tenant from `from` to `to` (inclusive), a batch at a time. */
async function* chainLinks(
  client: pg.ClientBase,
  tenantId: string,
  from: number,
  to: number,
): AsyncGenerator<ChainLink> {
  let next = from;
  while (next <= to) {
    const { rows } = await client.query<{ seq: string; prev_hash: string | null; hash: string }>(
      `select seq, encode(prev_hash, 'hex') as prev_hash, encode(hash, 'hex') as hash
       from app_public.audit_log where tenant_id = $1 and seq >= $2 and seq <= $3 order by seq limit 5000`,
      [tenantId, next, to],
    );
    if (rows.length === 0) return;
    for (const row of rows) yield { seq: Number(row.seq), prev_hash: row.prev_hash, hash: row.hash };
    next = Number(rows[rows.length - 1].seq) + 1;
  }
}

/**
 * Builds the pack of export `exportId` inside the caller's open transaction on `client` (which acts
 * as the owner role). `progressPool` reports progress outside that transaction.
 */
export async function buildEvidencePack(options: {
  client: pg.ClientBase;
  ownerPool: pg.Pool;
  tenantId: string;
  exportId: string;
  onProgress?: (percent: number) => void;
}): Promise<BuildResult> {
  const { client, tenantId, exportId } = options;
  const found = await client.query<{ incident_id: string; status: string }>(
    "select incident_id, status from app_public.exports where tenant_id = $1 and id = $2",
    [tenantId, exportId],
  );
  if (found.rows.length === 0 || found.rows[0].status === "ready") return { status: "skipped" };
  const incidentId = found.rows[0].incident_id;

  const { rows: heads } = await client.query<{ last_seq: string; last_hash: string }>(
    "select last_seq, encode(last_hash, 'hex') as last_hash from app_private.audit_heads where tenant_id = $1",
    [tenantId],
  );
  const head = { seq: Number(heads[0].last_seq), hash: heads[0].last_hash };

  const { rows: incidents } = await client.query(
    `select i.*, t.slug as tenant_slug, t.name as tenant_name, u.email as created_by_email
     from app_public.incidents i join app_public.tenants t on t.id = i.tenant_id
     left join app_public.users u on u.id = i.created_by
     where i.tenant_id = $1 and i.id = $2`,
    [tenantId, incidentId],
  );
  const incident = incidents[0];
  const { rows: milestones } = await client.query(
    `select m.*, app_public.nis2_milestones_status(m) as status, u.email as completed_by_email
     from app_public.nis2_milestones m left join app_public.users u on u.id = m.completed_by
     where m.tenant_id = $1 and m.incident_id = $2 order by m.due_at`,
    [tenantId, incidentId],
  );
  const { rows: evidence } = await client.query(
    `select e.id, e.filename, e.content_type, e.size_bytes, encode(e.sha256, 'hex') as sha256, e.blob_id,
            e.created_at, u.email as uploaded_by_email
     from app_public.evidence e left join app_public.users u on u.id = e.uploaded_by
     where e.tenant_id = $1 and e.incident_id = $2 order by e.created_at, e.id`,
    [tenantId, incidentId],
  );
  const { rows: entryRows } = await client.query<{ document: EntryLine["document"]; hash: string }>(
    `select app_private.audit_document(e) as document, encode(e.hash, 'hex') as hash
     from app_public.audit_log e where e.tenant_id = $1 and e.incident_id = $2 and e.seq <= $3 order by e.seq`,
    [tenantId, incidentId, head.seq],
  );
  const entries: EntryLine[] = entryRows.map((r) => ({ document: r.document, hash: r.hash }));

  const incidentFile: IncidentFile = {
    incident: {
      id: incident.id,
      title: incident.title,
      severity: incident.severity,
      status: incident.status,
      description: incident.description,
      root_cause: incident.root_cause,
      lessons_learned: incident.lessons_learned,
      nis2_enabled: incident.nis2_enabled,
      created_at: incident.created_at.toISOString(),
      created_by: incident.created_by_email,
      updated_at: incident.updated_at.toISOString(),
    },
    tenant: { id: tenantId, slug: incident.tenant_slug, name: incident.tenant_name },
    milestones: milestones.map((m) => ({
      kind: m.kind,
      name: MILESTONE_NAMES[m.kind] ?? m.kind,
      due_at: m.due_at.toISOString(),
      status: m.status,
      completed_at: iso(m.completed_at),
      completed_by: m.completed_by_email,
      notes: m.notes,
    })),
    evidence: evidence.map((e) => ({
      id: e.id,
      filename: e.filename,
      path: evidencePath(e.id, e.filename),
      content_type: e.content_type,
      size: Number(e.size_bytes),
      sha256: e.sha256,
      uploaded_at: e.created_at.toISOString(),
      uploaded_by: e.uploaded_by_email,
    })),
  };

  const signingKey = await activeSigningKey(options.ownerPool);
  const generatedAt = new Date();

  // The report first (its own blob: it can be downloaded on its own), then the ZIP that embeds it.
  const pdf = await writeBlob(
    client,
    tenantId,
    renderReportPdf({
      tenant: { name: incident.tenant_name, slug: incident.tenant_slug },
      incidentFile,
      entries,
      generatedAt: generatedAt.toISOString(),
      signingKeyFingerprint: signingKey.fingerprint,
      head,
      toolVersion: TOOL_VERSION,
    }) as AsyncIterable<Buffer>,
  );

  let lastPercent = -1;
  const zipStream = new PassThrough({ highWaterMark: BLOB_CHUNK_BYTES });
  const firstSeq = entries.length > 0 ? entries[0].document.seq : head.seq;
  const [, zip] = await Promise.all([
    writePack({
      output: zipStream,
      incident: incidentFile,
      signingKey,
      toolVersion: TOOL_VERSION,
      generatedAt,
      evidence: evidence.map((e) => ({
        id: e.id,
        filename: e.filename,
        size: Number(e.size_bytes),
        content: readBlob(client, tenantId, e.blob_id),
      })),
      entries: async function* () {
        yield* entries;
      },
      chain: chainLinks(client, tenantId, firstSeq, head.seq),
      report: readBlob(client, tenantId, pdf.id),
      reportSize: pdf.sizeBytes,
      onProgress(written, total) {
        const percent = Math.min(99, Math.floor((written / Math.max(total, 1)) * 100));
        if (percent >= lastPercent + 5) {
          lastPercent = percent;
          options.onProgress?.(percent);
        }
      },
    }),
    writeBlob(client, tenantId, zipStream),
  ]);

  await client.query(
    `update app_public.exports
     set status = 'ready', progress = 100, error = null, finished_at = now(), result_blob_id = $3, pdf_blob_id = $4
     where tenant_id = $1 and id = $2`,
    [tenantId, exportId, zip.id, pdf.id],
  );
  return { status: "ready", zipBytes: zip.sizeBytes, pdfBytes: pdf.sizeBytes };
}
