/**
 * Evidence files over HTTP: streaming multipart upload into the database (one transaction per
 * request: every file and its row commit together or not at all) and streaming download.
 * The database decides who may do either (RLS and the app_hidden upload functions).
 */
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { type Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import Router from "@koa/router";
import busboy from "busboy";
import type Koa from "koa";
import type pg from "pg";
import { BLOB_CHUNK_BYTES } from "../../db/blobs.ts";
import { type ActingContext, withContext } from "../../db/context.ts";
import { streamDownload } from "../../http/download.ts";
import { UserError } from "../../http/errors.ts";
import { actingContext, credentialsOf } from "../../http/request-context.ts";
import { sendExportFile } from "../pages/exports.ts";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface UploadedEvidence {
  id: string;
  filename: string;
  contentType: string;
  sizeBytes: number;
  sha256: string;
}

/** A filename the database accepts: no path, no control characters, at most 255 characters. */
export function cleanFilename(name: string): string {
  const base = name.split(/[/\\]/).pop() ?? "";
  const cleaned = base
    .replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, "") // control characters; bidi and other invisible format characters
    .trim()
    .slice(0, 255);
  return cleaned === "" || cleaned === "." || cleaned === ".." ? "file" : cleaned;
}

function formatBytes(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${Math.round(bytes / (1024 * 1024))} MB` : `${Math.round(bytes / 1024)} KB`;
}

/** How large an upload's files may be, and where they wait (default: the system's temporary directory). */
export interface UploadLimits {
  maxBytes: number;
  dir?: string;
}

/** A file part of an upload, received into a temporary file (not yet in the database). */
interface SpooledFile {
  path: string;
  filename: string;
  contentType: string;
  sizeBytes: number;
  sha256: Buffer;
}

/**
 * Receives every file part of a multipart request into temporary files, with no database
 * connection in use: a slow, stalled or broken upload holds nothing but its own disk space.
 * Every stream (request, parser, each file part) has an `error` listener before anything can
 * fail — an unhandled stream error would end the whole process. Returns the files and a cleanup.
 */
async function spoolUpload(
  req: Koa.Request["req"],
  headers: Record<string, string | string[] | undefined>,
  { maxBytes, dir: spoolDir = os.tmpdir() }: UploadLimits,
): Promise<{ files: SpooledFile[]; cleanup(): Promise<void> }> {
  let parser: busboy.Busboy;
  try {
    parser = busboy({
      headers: headers as busboy.BusboyConfig["headers"],
      // Browsers send filenames as raw UTF-8 (busboy would read them as Latin-1).
      defParamCharset: "utf8",
      limits: { fileSize: maxBytes, files: 20, fields: 10 },
    });
  } catch {
    throw new UserError(415, "Send the files as multipart/form-data.", "BAD_USER_INPUT");
  }
  const dir = await fs.mkdtemp(path.join(spoolDir, "attest-upload-"));
  const cleanup = () => fs.rm(dir, { recursive: true, force: true });
  const files: SpooledFile[] = [];
  let chain: Promise<void> = Promise.resolve();
  let failure: unknown;

  const spool = async (file: Readable, info: busboy.FileInfo) => {
    const filename = cleanFilename(info.filename ?? "file");
    const contentType = (info.mimeType || "application/octet-stream").slice(0, 255);
    const target = path.join(dir, String(files.length));
    const hash = createHash("sha256");
    let size = 0;
    const counted = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        size += chunk.length;
        done(null, chunk);
      },
    });
    await pipeline(file, counted, createWriteStream(target));
    if ((file as Readable & { truncated?: boolean }).truncated) {
      throw new UserError(
        413,
        `"${filename}" is larger than the ${formatBytes(maxBytes)} limit; nothing was saved.`,
        "TOO_LARGE",
      );
    }
    files.push({ path: target, filename, contentType, sizeBytes: size, sha256: hash.digest() });
  };

  const open = new Set<Readable>();
  try {
    await new Promise<void>((resolve, reject) => {
      let settled = false;
      const fail = (error: unknown) => {
        failure ??= error;
        if (settled) return;
        settled = true;
        req.unpipe(parser);
        req.resume(); // drain whatever the client still sends
        // A part cut off mid-way would never end now: end it, so that its temporary file is closed.
        for (const file of open) file.destroy();
        chain.then(
          () => reject(failure),
          () => reject(failure),
        );
      };
      const unreadable = (error: unknown) =>
        new UserError(
          400,
          `The upload could not be read (${(error as Error)?.message ?? "broken multipart body"}); nothing was saved.`,
        );
      parser.on("file", (_field, file, info) => {
        file.on("error", (error) => fail(unreadable(error)));
        open.add(file);
        file.on("close", () => open.delete(file));
        if (settled) file.destroy();
        chain = chain.then(async () => {
          if (failure) {
            file.resume();
            return;
          }
          try {
            await spool(file, info);
          } catch (error) {
            failure ??= error instanceof UserError ? error : unreadable(error);
            file.resume();
          }
        });
      });
      parser.on("filesLimit", () => {
        failure ??= new UserError(413, "At most 20 files per upload.", "TOO_LARGE");
      });
      parser.on("error", (error) => fail(unreadable(error)));
      parser.on("close", () => {
        chain.then(
          () => {
            if (settled) return;
            settled = true;
            resolve();
          },
          (error) => fail(error),
        );
      });
      req.on("aborted", () => fail(new UserError(400, "The upload was interrupted; nothing was saved.")));
      req.on("error", () => fail(new UserError(400, "The upload was interrupted; nothing was saved.")));
      // (Also when the connection closes before the body was read to its end and no 'aborted'
      // came: a body received whole but not read yet is dropped with the connection.)
      req.on("close", () => {
        if (!req.readableEnded) fail(new UserError(400, "The upload was interrupted; nothing was saved."));
      });
      // The client may have gone already (while the upload was being checked): those events came
      // before anyone listened, and the body, whole or not, will never be read.
      if (req.destroyed) {
        fail(new UserError(400, "The upload was interrupted; nothing was saved."));
        return;
      }
      req.pipe(parser);
    });
    if (failure) throw failure;
    if (files.length === 0) throw new UserError(400, "Choose at least one file to upload.", "BAD_USER_INPUT");
    return { files, cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** Stores received files as evidence rows of `incidentId`, in the caller's (short) transaction. */
async function storeSpooled(client: pg.ClientBase, files: SpooledFile[], incidentId: string) {
  const saved: UploadedEvidence[] = [];
  for (const file of files) {
    const { rows } = await client.query<{ id: string }>("select app_hidden.begin_upload() as id");
    const blobId = rows[0].id;
    let seq = 0;
    for await (const chunk of createReadStream(file.path, { highWaterMark: BLOB_CHUNK_BYTES })) {
      await client.query("select app_hidden.append_upload($1, $2, $3)", [blobId, seq++, chunk]);
    }
    await client.query("select app_hidden.finish_upload($1, $2, $3)", [blobId, file.sizeBytes, file.sha256]);
    const inserted = await client.query<{ id: string }>(
      "insert into app_public.evidence (incident_id, filename, content_type, blob_id) values ($1, $2, $3, $4) returning id",
      [incidentId, file.filename, file.contentType, blobId],
    );
    saved.push({
      id: inserted.rows[0].id,
      filename: file.filename,
      contentType: file.contentType,
      sizeBytes: file.sizeBytes,
      sha256: file.sha256.toString("hex"),
    });
  }
  return saved;
}

/**
 * Receives the files of a multipart request as evidence of `incidentId`. `tx` runs a function in
 * one short transaction as the signed-in user; `check` (run in it before the body is read and
 * again when storing) refuses with a UserError when the upload may not go ahead. No transaction
 * is open while the client sends: the files are stored, all or none, once they have all arrived.
 */
export async function receiveEvidence(
  tx: <T>(fn: (client: pg.ClientBase) => Promise<T>) => Promise<T>,
  req: Koa.Request["req"],
  headers: Record<string, string | string[] | undefined>,
  incidentId: string,
  limits: UploadLimits,
  check: (client: pg.ClientBase) => Promise<void>,
): Promise<UploadedEvidence[]> {
  await tx(check);
  const spooled = await spoolUpload(req, headers, limits);
  try {
    return await tx(async (client) => {
      await check(client);
      return storeSpooled(client, spooled.files, incidentId);
    });
  } finally {
    await spooled.cleanup();
  }
}

/**
 * Streams one evidence file (as `context` may see it: RLS decides) as an attachment, one short
 * transaction per chunk (see streamDownload). `incidentId` also requires the file to belong to
 * that incident. Each GET is recorded as `evidence.downloaded` before its first byte is sent.
 */
export async function sendEvidenceFile(
  ctx: Koa.Context,
  pool: pg.Pool,
  context: ActingContext,
  id: string,
  incidentId?: string,
): Promise<void> {
  await streamDownload(ctx, pool, context, async (client) => {
    const visible = await client.query(
      "select 1 from app_public.evidence where id = $1 and ($2::uuid is null or incident_id = $2)",
      [id, incidentId ?? null],
    );
    if (visible.rowCount === 0) throw new UserError(404, "No such evidence file in this tenant.", "NOT_FOUND");
    // Checks again as the database sees it, and records the download (rolled back for HEAD).
    const { rows } = await client.query<{ filename: string; content_type: string; size_bytes: string; sha256: string }>(
      "select filename, content_type, size_bytes, sha256 from app_hidden.start_evidence_download($1, $2)",
      [id, incidentId ?? null],
    );
    const file = rows[0];
    return {
      filename: file.filename,
      contentType: file.content_type,
      size: file.size_bytes,
      sha256: file.sha256,
      chunk: async (c, seq) =>
        (await c.query<{ data: Buffer | null }>("select app_hidden.evidence_chunk($1, $2) as data", [id, seq])).rows[0]
          ?.data ?? null,
    };
  });
}

export function evidenceRoutes(options: {
  authPool: pg.Pool;
  visitorRole: string;
  maxUploadBytes: number;
  uploadDir?: string;
}): Router {
  const router = new Router({ prefix: "/api" });
  const surfaceOf = (ctx: Koa.Context) => (credentialsOf(ctx).apiToken ? "api" : "web");
  const tenantOf = (ctx: Koa.Context) =>
    ctx.get("x-tenant") || (typeof ctx.query.tenant === "string" ? ctx.query.tenant : undefined);

  router.post("/incidents/:incidentId/evidence", async (ctx) => {
    const { incidentId } = ctx.params;
    if (!UUID.test(incidentId)) throw new UserError(404, "No such incident.", "NOT_FOUND");
    const context = actingContext(ctx, { role: options.visitorRole, surface: surfaceOf(ctx), tenant: tenantOf(ctx) });
    const saved = await receiveEvidence(
      (fn) => withContext(options.authPool, context, fn),
      ctx.req,
      ctx.req.headers,
      incidentId,
      { maxBytes: options.maxUploadBytes, dir: options.uploadDir },
      async (client) => {
        const visible = await client.query("select 1 from app_public.incidents where id = $1 and deleted_at is null", [
          incidentId,
        ]);
        if (visible.rowCount === 0) throw new UserError(404, "No such incident in this tenant.", "NOT_FOUND");
      },
    );
    ctx.status = 201;
    ctx.body = { evidence: saved };
  });

  router.get("/evidence/:id/download", async (ctx) => {
    const { id } = ctx.params;
    if (!UUID.test(id)) throw new UserError(404, "No such evidence file.", "NOT_FOUND");
    const context = actingContext(ctx, { role: options.visitorRole, surface: surfaceOf(ctx), tenant: tenantOf(ctx) });
    await sendEvidenceFile(ctx, options.authPool, context, id);
  });

  for (const [file, kind] of [
    ["pack.zip", "zip"],
    ["report.pdf", "pdf"],
  ] as const) {
    router.get(`/exports/:exportId/${file}`, async (ctx) => {
      const context = actingContext(ctx, { role: options.visitorRole, surface: surfaceOf(ctx), tenant: tenantOf(ctx) });
      await sendExportFile(ctx, options.authPool, context, ctx.params.exportId, kind);
    });
  }

  return router;
}
