/**
 * Evidence files over HTTP: streaming multipart upload into the database (one transaction per
 * request: every file and its row commit together or not at all) and streaming download.
 * The database decides who may do either (RLS and the app_hidden upload functions).
 */
import { createHash } from "node:crypto";
import type { Readable } from "node:stream";
import Router from "@koa/router";
import busboy from "busboy";
import type Koa from "koa";
import type pg from "pg";
import { BLOB_CHUNK_BYTES } from "../../db/blobs.ts";
import { type ActingContext, withContext } from "../../db/context.ts";
import { streamDownload } from "../download.ts";
import { UserError } from "../errors.ts";
import { sendExportFile } from "../pages/exports.ts";
import { actingContext, credentialsOf } from "../request-context.ts";

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

/**
 * Streams every file part of a multipart request into evidence rows of `incidentId`, inside the
 * caller's transaction (`client` acts as the signed-in user).
 */
export async function receiveEvidence(
  client: pg.ClientBase,
  req: Koa.Request["req"],
  headers: Record<string, string | string[] | undefined>,
  incidentId: string,
  maxBytes: number,
): Promise<UploadedEvidence[]> {
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
  const saved: UploadedEvidence[] = [];
  let chain: Promise<void> = Promise.resolve();
  let failure: unknown;

  const store = async (file: Readable, info: busboy.FileInfo) => {
    const filename = cleanFilename(info.filename ?? "file");
    const contentType = (info.mimeType || "application/octet-stream").slice(0, 255);
    const { rows } = await client.query<{ id: string }>("select app_hidden.begin_upload() as id");
    const blobId = rows[0].id;
    const hash = createHash("sha256");
    let size = 0;
    let seq = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      const data = Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      await client.query("select app_hidden.append_upload($1, $2, $3)", [blobId, seq++, data]);
    };
    for await (const chunk of file as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      let rest = chunk;
      while (pendingBytes + rest.length >= BLOB_CHUNK_BYTES) {
        const take = BLOB_CHUNK_BYTES - pendingBytes;
        pending.push(rest.subarray(0, take));
        pendingBytes += take;
        rest = rest.subarray(take);
        await flush();
      }
      if (rest.length > 0) {
        pending.push(rest);
        pendingBytes += rest.length;
      }
    }
    if ((file as Readable & { truncated?: boolean }).truncated) {
      throw new UserError(
        413,
        `"${filename}" is larger than the ${formatBytes(maxBytes)} limit; nothing was saved.`,
        "TOO_LARGE",
      );
    }
    if (pendingBytes > 0) await flush();
    const digest = hash.digest();
    await client.query("select app_hidden.finish_upload($1, $2, $3)", [blobId, size, digest]);
    const inserted = await client.query<{ id: string }>(
      "insert into app_public.evidence (incident_id, filename, content_type, blob_id) values ($1, $2, $3, $4) returning id",
      [incidentId, filename, contentType, blobId],
    );
    saved.push({ id: inserted.rows[0].id, filename, contentType, sizeBytes: size, sha256: digest.toString("hex") });
  };

  // Every stream here (request, parser, each file part) gets an `error` listener before anything
  // can fail: an unhandled stream error would end the whole process. The promise settles only once
  // the part being stored has stopped using the connection, so the caller's rollback comes last.
  await new Promise<void>((resolve, reject) => {
    let settled = false;
    const fail = (error: unknown) => {
      failure ??= error;
      if (settled) return;
      settled = true;
      req.unpipe(parser);
      req.resume(); // drain whatever the client still sends
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
      chain = chain.then(async () => {
        if (failure) {
          file.resume();
          return;
        }
        try {
          await store(file, info);
        } catch (error) {
          failure ??= error;
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
    req.pipe(parser);
  });
  if (failure) throw failure;
  if (saved.length === 0) throw new UserError(400, "Choose at least one file to upload.", "BAD_USER_INPUT");
  return saved;
}

/**
 * Streams one evidence file (as `context` may see it: RLS decides) as an attachment, one short
 * transaction per chunk (see streamDownload). `incidentId` also requires the file to belong to
 * that incident.
 */
export async function sendEvidenceFile(
  ctx: Koa.Context,
  pool: pg.Pool,
  context: ActingContext,
  id: string,
  incidentId?: string,
): Promise<void> {
  await streamDownload(ctx, pool, context, async (client) => {
    const { rows } = await client.query<{ filename: string; content_type: string; size_bytes: string; sha256: string }>(
      `select filename, content_type, size_bytes, encode(sha256, 'hex') as sha256
       from app_public.evidence where id = $1 and ($2::uuid is null or incident_id = $2)`,
      [id, incidentId ?? null],
    );
    if (rows.length === 0) throw new UserError(404, "No such evidence file in this tenant.", "NOT_FOUND");
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

export function evidenceRoutes(options: { authPool: pg.Pool; visitorRole: string; maxUploadBytes: number }): Router {
  const router = new Router({ prefix: "/api" });
  const surfaceOf = (ctx: Koa.Context) => (credentialsOf(ctx).apiToken ? "api" : "web");
  const tenantOf = (ctx: Koa.Context) =>
    ctx.get("x-tenant") || (typeof ctx.query.tenant === "string" ? ctx.query.tenant : undefined);

  router.post("/incidents/:incidentId/evidence", async (ctx) => {
    const { incidentId } = ctx.params;
    if (!UUID.test(incidentId)) throw new UserError(404, "No such incident.", "NOT_FOUND");
    const context = actingContext(ctx, { role: options.visitorRole, surface: surfaceOf(ctx), tenant: tenantOf(ctx) });
    const saved = await withContext(options.authPool, context, async (client) => {
      const visible = await client.query("select 1 from app_public.incidents where id = $1 and deleted_at is null", [
        incidentId,
      ]);
      if (visible.rowCount === 0) throw new UserError(404, "No such incident in this tenant.", "NOT_FOUND");
      return receiveEvidence(client, ctx.req, ctx.req.headers, incidentId, options.maxUploadBytes);
    });
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
