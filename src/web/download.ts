/**
 * Streaming a stored file (evidence, evidence packs) to the browser from inside one database
 * transaction that acts as the signed-in user: the database decides whether the file may be read,
 * chunk by chunk, and whatever the transaction records (a download) commits only once the last
 * byte was sent. Memory stays at one 1 MiB chunk whatever the file size.
 */
import { Readable } from "node:stream";
import type Koa from "koa";
import type pg from "pg";
import { type ActingContext, contextSettings } from "../db/context.ts";

export interface Download {
  filename: string;
  contentType: string;
  size: string | number;
  sha256?: string;
  /** Reads chunk `seq` (from 0); null when there is none. */
  chunk(client: pg.ClientBase, seq: number): Promise<Buffer | null>;
}

export async function streamDownload(
  ctx: Koa.Context,
  pool: pg.Pool,
  context: ActingContext,
  open: (client: pg.ClientBase) => Promise<Download>,
): Promise<void> {
  const client = await pool.connect();
  let released = false;
  const release = async (commit: boolean) => {
    if (released) return;
    released = true;
    await client.query(commit ? "commit" : "rollback").catch(() => {});
    client.release();
  };
  try {
    await client.query("begin");
    const settings = Object.entries(contextSettings(context));
    await client.query(
      `select ${settings.map((_, i) => `set_config($${2 * i + 1}, $${2 * i + 2}, true)`).join(", ")}`,
      settings.flat(),
    );
    const file = await open(client);
    async function* chunks() {
      try {
        for (let seq = 0; ; seq++) {
          const data = await file.chunk(client, seq);
          if (!data) break;
          yield data;
        }
        await release(true);
      } finally {
        await release(false);
      }
    }
    ctx.set("Content-Type", file.contentType);
    ctx.set("Content-Length", String(file.size));
    ctx.set("Content-Disposition", `attachment; filename*=UTF-8''${encodeURIComponent(file.filename)}`);
    if (file.sha256) ctx.set("X-Content-SHA256", file.sha256);
    ctx.set("X-Content-Type-Options", "nosniff");
    ctx.set("Cache-Control", "private, no-store");
    ctx.body = Readable.from(chunks());
  } catch (error) {
    await release(false);
    throw error;
  }
}
