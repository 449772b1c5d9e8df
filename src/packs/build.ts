/**
 * Builds the evidence pack of one export request from the database: the PDF report and the
 * signed ZIP (format version 2), both stored as blobs. Before the build, waitUntilSealed waits
 * (outside any transaction) until the sealer has put every audit entry of the incident into the
 * tenant's Merkle log. The build itself is ONE transaction, so a build that dies half-way leaves
 * nothing behind, and the export becomes `ready` (pointing at both blobs) only in that same commit:
 * it takes the tenant's newest checkpoint that covers the incident's last entry and the incident's
 * leaves with their inclusion proofs in that checkpoint's tree (app_private.incident_leaves).
 * Memory stays flat: evidence is streamed and the ZIP written 1 MiB at a time. Progress goes to the
 * export row through a separate connection, so people can watch it.
 *
 * Speed: the evidence is read on a second connection of its own (binary COPY, streamBlob) in the
 * build transaction's exported snapshot, so it sees exactly what the build sees while the build's
 * connection writes the ZIP: reading and writing run on two PostgreSQL backends at once, and the
 * bytes never pass through hex text. Evidence that does not compress (sampled: looksCompressible)
 * is stored in the ZIP, not deflated.
 * Runs as the owner role (the worker); it reads only the export's own tenant.
 */

import { createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { PassThrough } from "node:stream";
import pg from "pg";
import { parseCheckpoint } from "../audit/checkpoint.ts";
import { type AuditUser, userIdsOf } from "../audit/display.ts";
import { activeSigningKey, type SigningKey } from "../audit/keys.ts";
import { LeafError, parseLeaf } from "../audit/leaf.ts";
import { hashLeaf } from "../audit/merkle.ts";
import { streamBlob, writeBlob } from "../db/blobs.ts";
import type { IncidentFile } from "./format.ts";
import { type ReportEntry, renderReportPdf } from "./report-pdf.ts";
import { evidencePath, looksCompressible, PackBuildError, type PackEntry, writePack } from "./writer.ts";

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
  /** Milliseconds spent on each part of the build (for the log and the benchmark). */
  timings?: { prepareMs: number; pdfMs: number; zipMs: number };
}

const iso = (value: Date | null) => (value ? value.toISOString() : null);

/** An entry as the PDF shows it. The writer checks the same leaf against the checkpoint. */
function reportEntry(entry: PackEntry): ReportEntry {
  try {
    const body = parseLeaf(Buffer.from(entry.leaf).toString("utf8")).body;
    return { seq: entry.seq, leafHash: hashLeaf(entry.leaf).toString("hex"), body };
  } catch (error) {
    if (error instanceof LeafError) {
      throw new PackBuildError(`audit entry ${entry.seq}: its leaf is malformed: ${error.message}`);
    }
    throw error;
  }
}

/** Which API token (by name, as the log recorded it then) each entry made with one was made with. */
async function tokenNames(client: pg.ClientBase, tenantId: string, entries: PackEntry[]) {
  const { rows } = await client.query<{ seq: string; name: string }>(
    `select l.seq, app_public.audit_log_api_token_name(e) as name
     from app_hidden.audit_leaves l join app_public.audit_log e on e.tenant_id = l.tenant_id and e.id = l.entry_id
     where l.tenant_id = $1 and l.seq = any($2::bigint[]) and e.api_token_id is not null`,
    [tenantId, entries.map((e) => e.seq)],
  );
  return Object.fromEntries(rows.filter((r) => r.name).map((r) => [Number(r.seq), r.name]));
}

/** The export's incident, or null when there is nothing to build. */
async function exportIncident(db: pg.ClientBase | pg.Pool, tenantId: string, exportId: string): Promise<string | null> {
  const found = await db.query<{ incident_id: string; status: string }>(
    "select incident_id, status from app_public.exports where tenant_id = $1 and id = $2",
    [tenantId, exportId],
  );
  return found.rows.length === 0 || found.rows[0].status === "ready" ? null : found.rows[0].incident_id;
}

/** How many of the incident's audit entries the sealer has not put into the log yet. */
async function unsealedEntries(db: pg.ClientBase | pg.Pool, tenantId: string, incidentId: string): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    // Entries without a position, plus one while no signed checkpoint covers the newest of them.
    `select (select count(*)::int from app_public.audit_log e
             where e.tenant_id = $1 and e.incident_id = $2
               and not exists (select 1 from app_hidden.audit_leaves l where l.tenant_id = e.tenant_id and l.entry_id = e.id))
          + (select case when not exists (
                   select 1 from app_public.audit_checkpoints c
                   where c.tenant_id = $1
                     and c.tree_size >= coalesce((select max(l.seq) from app_hidden.audit_leaves l
                                                  where l.tenant_id = $1 and l.incident_id = $2), 0))
                 then 1 else 0 end) as n`,
    [tenantId, incidentId],
  );
  return rows[0].n;
}

export class NotSealedError extends Error {
  override name = "NotSealedError";
}

/**
 * Waits until every audit entry of the export's incident is sealed: short polls on the pool, no
 * transaction held in between (an open writing transaction would hold the sealer back). Throws
 * NotSealedError after `timeoutMs`, so that graphile-worker retries the job later.
 */
export async function waitUntilSealed(
  ownerPool: pg.Pool,
  tenantId: string,
  exportId: string,
  options: { timeoutMs?: number; pollMs?: number } = {},
): Promise<void> {
  const incidentId = await exportIncident(ownerPool, tenantId, exportId);
  if (incidentId === null) return;
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    const pending = await unsealedEntries(ownerPool, tenantId, incidentId);
    if (pending === 0) return;
    if (Date.now() >= deadline) {
      throw new NotSealedError(
        `${pending} audit ${pending === 1 ? "entry" : "entries"} of the incident ${pending === 1 ? "is" : "are"} not sealed yet; is the sealer running?`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 50));
  }
}

interface PackCheckpoint {
  treeSize: number;
  note: string;
  keyFingerprint: string;
}

/** The tenant's newest checkpoint that covers the incident's last sealed entry. */
async function coveringCheckpoint(
  client: pg.ClientBase,
  tenantId: string,
  incidentId: string,
): Promise<PackCheckpoint> {
  const { rows } = await client.query<{ tree_size: string; note: string; key_fingerprint: string }>(
    `select c.tree_size, c.note, c.key_fingerprint from app_public.audit_checkpoints c
     where c.tenant_id = $1
       and c.tree_size >= coalesce((select max(l.seq) from app_hidden.audit_leaves l
                                    where l.tenant_id = $1 and l.incident_id = $2), 0)
     order by c.tree_size desc limit 1`,
    [tenantId, incidentId],
  );
  if (rows.length === 0) throw new NotSealedError("the tenant's audit log has no checkpoint covering the incident yet");
  return { treeSize: Number(rows[0].tree_size), note: rows[0].note, keyFingerprint: rows[0].key_fingerprint };
}

/**
 * The key that signs the pack: the one that signed its checkpoint (the active key, unless the
 * checkpoint was signed just before a rotation; retired keys stay published).
 */
async function signingKeyFor(client: pg.ClientBase, ownerPool: pg.Pool, fingerprint: string): Promise<SigningKey> {
  const active = await activeSigningKey(ownerPool);
  if (active.fingerprint === fingerprint) return active;
  const { rows } = await client.query<{ public_key_pem: string; private_key_pem: string }>(
    "select public_key_pem, private_key_pem from app_private.signing_keys where fingerprint = $1",
    [fingerprint],
  );
  if (rows.length === 0) throw new Error(`the key ${fingerprint} that signed the checkpoint is not the installation's`);
  return { fingerprint, publicKeyPem: rows[0].public_key_pem, privateKey: createPrivateKey(rows[0].private_key_pem) };
}

/** The incident's sealed entries with their inclusion proofs in the tree of `treeSize`, oldest first. */
async function incidentLeaves(
  client: pg.ClientBase,
  tenantId: string,
  incidentId: string,
  treeSize: number,
): Promise<PackEntry[]> {
  const { rows } = await client.query<{ seq: string; leaf: Buffer; proof: Buffer[] }>(
    "select seq, leaf, proof from app_private.incident_leaves($1, $2, $3) order by seq",
    [tenantId, incidentId, treeSize],
  );
  return rows.map((r) => ({ seq: Number(r.seq), leaf: r.leaf, proof: r.proof }));
}

/** Bytes read from the start, the middle and the end of a blob to tell whether it compresses. */
const SAMPLE_BYTES = 32 * 1024;

/** Samples of a stored blob (start of its first, middle and last chunk), for looksCompressible. */
async function blobSamples(client: pg.ClientBase, tenantId: string, blobId: string): Promise<Buffer[]> {
  const { rows } = await client.query<{ sample: Buffer }>(
    `select substring(c.data from 1 for $3) as sample
     from app_private.blob_chunks c,
          (select max(seq) as last from app_private.blob_chunks where tenant_id = $1 and blob_id = $2) m
     where c.tenant_id = $1 and c.blob_id = $2 and c.seq in (0, m.last / 2, m.last)`,
    [tenantId, blobId, SAMPLE_BYTES],
  );
  return rows.map((r) => r.sample);
}

/**
 * A connection of its own (not from the pool: a build must never wait for a pooled connection
 * that another build holds) that reads in the snapshot of the build's transaction on `client`.
 */
async function snapshotReader(client: pg.ClientBase, ownerPool: pg.Pool): Promise<pg.Client> {
  const { rows } = await client.query<{ id: string }>("select pg_export_snapshot() as id");
  const snapshot = rows[0].id;
  if (!/^[0-9A-F-]+$/i.test(snapshot)) throw new Error(`unexpected snapshot id ${snapshot}`);
  const reader = new pg.Client({ ...ownerPool.options, application_name: "attest-pack-reader" });
  reader.on("error", () => {}); // a failure shows in the read that needs it
  await reader.connect();
  try {
    await reader.query("begin isolation level repeatable read read only");
    await reader.query(`set transaction snapshot '${snapshot}'`);
  } catch (error) {
    await reader.end().catch(() => {});
    throw error;
  }
  return reader;
}

/**
 * Builds the pack of export `exportId` inside the caller's open transaction on `client` (which acts
 * as the owner role). Call waitUntilSealed first, before opening that transaction: the pack holds
 * the incident's sealed entries only. `ownerPool` reads the signing key outside the transaction.
 */
export async function buildEvidencePack(options: {
  client: pg.ClientBase;
  ownerPool: pg.Pool;
  tenantId: string;
  exportId: string;
  onProgress?: (percent: number) => void;
}): Promise<BuildResult> {
  const { client, tenantId, exportId } = options;
  const started = performance.now();
  const incidentId = await exportIncident(client, tenantId, exportId);
  if (incidentId === null) return { status: "skipped" };
  // Entries written since waitUntilSealed (the incident is still being worked on) are left for a
  // later pack: this one holds every entry up to its checkpoint.
  const checkpoint = await coveringCheckpoint(client, tenantId, incidentId);
  const entries = await incidentLeaves(client, tenantId, incidentId, checkpoint.treeSize);

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

  // The users the entries name by id (creators, uploaders, members), for the report's old → new values.
  const reportEntries = entries.map(reportEntry);
  const { rows: users } = await client.query<AuditUser>(
    "select u.id, u.name, u.email from app_public.users u where u.id = any($1::uuid[])",
    [userIdsOf(reportEntries.map((e) => e.body))],
  );

  const signingKey = await signingKeyFor(client, options.ownerPool, checkpoint.keyFingerprint);
  const parsedCheckpoint = parseCheckpoint(checkpoint.note);
  const generatedAt = new Date();
  const compress = new Map<string, boolean>();
  for (const e of evidence) compress.set(e.id, looksCompressible(await blobSamples(client, tenantId, e.blob_id)));
  const pdfStarted = performance.now();

  // The report first (its own blob: it can be downloaded on its own), then the ZIP that embeds it.
  // It is kept in memory for the ZIP (the build's connection is busy writing the ZIP then); its
  // size grows with the incident's entries, which are in memory anyway.
  const pdfBytes: Buffer[] = [];
  const report = renderReportPdf({
    tenant: { name: incident.tenant_name, slug: incident.tenant_slug },
    incidentFile,
    entries: reportEntries,
    users,
    tokenNames: await tokenNames(client, tenantId, entries),
    generatedAt: generatedAt.toISOString(),
    signingKeyFingerprint: signingKey.fingerprint,
    checkpoint: {
      origin: parsedCheckpoint.origin,
      treeSize: parsedCheckpoint.treeSize,
      rootHash: parsedCheckpoint.rootHash.toString("hex"),
      time: parsedCheckpoint.time,
    },
    toolVersion: TOOL_VERSION,
  }) as AsyncIterable<Buffer>;
  const pdf = await writeBlob(
    client,
    tenantId,
    (async function* () {
      for await (const chunk of report) {
        pdfBytes.push(chunk);
        yield chunk;
      }
    })(),
  );

  const zipStarted = performance.now();
  let lastPercent = -1;
  // Object mode on the reading side: writeBlob gets the ZIP's pieces as they are, never joined.
  const zipStream = new PassThrough({ readableObjectMode: true, readableHighWaterMark: 64 });
  const reader = await snapshotReader(client, options.ownerPool);
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
        content: streamBlob(reader, tenantId, e.blob_id, Number(e.size_bytes)),
        compress: compress.get(e.id),
      })),
      checkpoint: checkpoint.note,
      entries: async function* () {
        yield* entries;
      },
      report: (async function* () {
        yield* pdfBytes;
      })(),
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
  ]).finally(() => reader.end().catch(() => {}));
  const finished = performance.now();

  await client.query(
    `update app_public.exports
     set status = 'ready', progress = 100, error = null, finished_at = now(), result_blob_id = $3, pdf_blob_id = $4
     where tenant_id = $1 and id = $2`,
    [tenantId, exportId, zip.id, pdf.id],
  );
  return {
    status: "ready",
    zipBytes: zip.sizeBytes,
    pdfBytes: pdf.sizeBytes,
    timings: { prepareMs: pdfStarted - started, pdfMs: zipStarted - pdfStarted, zipMs: finished - zipStarted },
  };
}
