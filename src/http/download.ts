/**
 * Sending a stored file (evidence, evidence packs) to the browser as the signed-in user: the
 * database decides whether the file may be read, chunk by chunk. Nothing is held while the client
 * is slow, gone or never reads (HEAD): the file is opened in one short transaction, each 1 MiB
 * chunk is read in another. Memory stays at one chunk.
 *
 * When a download counts: opening the file records the download in the database (the function
 * `open` calls decides what: `evidence.downloaded`, `export.downloaded`), and that transaction
 * commits before the response starts. So every download whose first byte is sent is recorded
 * exactly once — also one the client aborts halfway — and a download that cannot be recorded
 * sends nothing. A HEAD request or a refused one opens the file in a transaction that is rolled
 * back: it records nothing.
 *
 * Files are always served so that a browser can never run them on this origin: as
 * `application/octet-stream` (ZIP and PDF keep their type), as an attachment, and in a CSP sandbox.
 * The stored content type is passed along in `X-Content-Type` for clients that want it.
 */
import { Readable } from "node:stream";
import type Koa from "koa";
import type pg from "pg";
import { type ActingContext, withContext } from "../db/context.ts";

export interface Download {
  filename: string;
  contentType: string;
  size: string | number;
  sha256?: string;
  /** Reads chunk `seq` (from 0); null when there is none. */
  chunk(client: pg.ClientBase, seq: number): Promise<Buffer | null>;
}

/** Types served as they are (no script runs from them in an attachment); anything else is octet-stream. */
const PASSIVE_TYPES = new Set(["application/zip", "application/pdf"]);

/** Bidirectional and other invisible format characters (U+202E turns `fdp.exe` into `exe.pdf`). */
const FORMAT_CHARACTERS = /[\p{Cc}\p{Cf}\u2028\u2029]/gu;

/** A filename safe to show and to save: no control, bidi or other invisible format characters, no path. */
export function displayFilename(name: string): string {
  const cleaned = name.replace(FORMAT_CHARACTERS, "").replace(/[/\\]/g, "_").trim();
  return cleaned === "" || cleaned === "." || cleaned === ".." ? "file" : cleaned;
}

/**
 * The Content-Disposition of an attachment: the cleaned name in UTF-8 (`filename*`, RFC 6266), and
 * an ASCII stand-in (`filename`) for clients that read only that one, such as `curl -OJ`.
 */
export function attachmentDisposition(filename: string): string {
  const name = displayFilename(filename);
  const ascii = name.replace(/[^\x20-\x7e]/g, "_").replace(/["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/**
 * Answers `ctx` with the file that `open` finds and records. `open` runs in its own short
 * transaction, committed for a GET before the first byte is sent and rolled back for a HEAD (which
 * therefore records nothing); it throws a UserError when there is no such file.
 */
export async function streamDownload(
  ctx: Koa.Context,
  pool: pg.Pool,
  context: ActingContext,
  open: (client: pg.ClientBase) => Promise<Download>,
): Promise<void> {
  const file = ctx.method === "HEAD" ? await readOnly(pool, context, open) : await withContext(pool, context, open);
  ctx.status = 200;
  ctx.set("Content-Type", PASSIVE_TYPES.has(file.contentType) ? file.contentType : "application/octet-stream");
  ctx.set("X-Content-Type", file.contentType.replace(/[^\x20-\x7e]/g, ""));
  ctx.set("Content-Length", String(file.size));
  ctx.set("Content-Disposition", attachmentDisposition(file.filename));
  if (file.sha256) ctx.set("X-Content-SHA256", file.sha256);
  ctx.set("X-Content-Type-Options", "nosniff");
  ctx.set("Content-Security-Policy", "sandbox; default-src 'none'");
  ctx.set("Cache-Control", "private, no-store");
  if (ctx.method === "HEAD") return; // headers only: nothing to read, nothing recorded

  const expected = Number(file.size);
  async function* chunks() {
    let sent = 0;
    for (let seq = 0; ; seq++) {
      const data = await withContext(pool, context, (client) => file.chunk(client, seq));
      if (!data) break;
      sent += data.length;
      yield data;
    }
    if (sent !== expected) {
      // The file changed or went away while it was being sent: cut the response short so the
      // client sees an incomplete download rather than a wrong one.
      throw new Error(`download ended after ${sent} of ${expected} bytes`);
    }
  }
  ctx.body = Readable.from(chunks(), { objectMode: false, highWaterMark: 1 });
}

/** Runs `fn` as `context` in a transaction that is always rolled back. */
async function readOnly<T>(pool: pg.Pool, context: ActingContext, fn: (client: pg.ClientBase) => Promise<T>) {
  const rollback = new Error("rollback");
  let result: T | undefined;
  try {
    await withContext(pool, context, async (client) => {
      result = await fn(client);
      throw rollback;
    });
  } catch (error) {
    if (error !== rollback) throw error;
  }
  return result as T;
}
