/**
 * File contents stored in PostgreSQL (app_private.blobs + blob_chunks), so a file and the row
 * that points at it commit or roll back together. Owns chunking and hashing; callers run it
 * inside their transaction on a connection that acts as the owner role.
 */
import { createHash } from "node:crypto";
import type pg from "pg";

export const BLOB_CHUNK_BYTES = 1024 * 1024;

export interface StoredBlob {
  id: string;
  sizeBytes: number;
  sha256: string;
}

/** Streams `source` into a new blob of `tenantId`, 1 MiB per row; returns its id, size and SHA-256. */
export async function writeBlob(
  client: pg.ClientBase,
  tenantId: string,
  source: AsyncIterable<Buffer | Uint8Array> | Iterable<Buffer | Uint8Array>,
): Promise<StoredBlob> {
  const {
    rows: [{ id }],
  } = await client.query<{ id: string }>(
    "insert into app_private.blobs (tenant_id, size_bytes, sha256) values ($1, 0, sha256('')) returning id",
    [tenantId],
  );
  const hash = createHash("sha256");
  let size = 0;
  let seq = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async (all: boolean) => {
    while (pendingBytes >= BLOB_CHUNK_BYTES || (all && pendingBytes > 0)) {
      const joined = Buffer.concat(pending);
      const chunk = joined.subarray(0, BLOB_CHUNK_BYTES);
      const rest = joined.subarray(chunk.length);
      await client.query(
        "insert into app_private.blob_chunks (tenant_id, blob_id, seq, data) values ($1, $2, $3, $4)",
        [tenantId, id, seq++, chunk],
      );
      pending = rest.length > 0 ? [rest] : [];
      pendingBytes = rest.length;
    }
  };
  for await (const part of source) {
    const buffer = Buffer.isBuffer(part) ? part : Buffer.from(part);
    hash.update(buffer);
    size += buffer.length;
    pending.push(buffer);
    pendingBytes += buffer.length;
    if (pendingBytes >= BLOB_CHUNK_BYTES) await flush(false);
  }
  await flush(true);
  const digest = hash.digest();
  await client.query(
    "update app_private.blobs set size_bytes = $3, sha256 = $4, finished_at = now() where tenant_id = $1 and id = $2",
    [tenantId, id, size, digest],
  );
  return { id, sizeBytes: size, sha256: digest.toString("hex") };
}

/** Reads a blob back chunk by chunk (constant memory). */
export async function* readBlob(client: pg.ClientBase, tenantId: string, blobId: string): AsyncGenerator<Buffer> {
  for (let seq = 0; ; seq++) {
    const { rows } = await client.query<{ data: Buffer }>(
      "select data from app_private.blob_chunks where tenant_id = $1 and blob_id = $2 and seq = $3",
      [tenantId, blobId, seq],
    );
    if (rows.length === 0) return;
    yield rows[0].data;
  }
}
