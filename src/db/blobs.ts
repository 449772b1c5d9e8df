/**
 * File contents stored in PostgreSQL (app_private.blobs + blob_chunks), so a file and the row
 * that points at it commit or roll back together. Owns chunking and hashing; callers run it
 * inside their transaction on a connection that acts as the owner role.
 *
 * Two ways to read a blob back: readBlob (one query per chunk; may be interleaved with other
 * queries on the same connection) and streamBlob (one binary COPY of all its chunks: no hex text,
 * no copy of a chunk into a string, backpressure from the consumer down to the socket; the
 * connection does nothing else meanwhile).
 */
import { createHash } from "node:crypto";
import type pg from "pg";
import { from as copyFrom, to as copyTo } from "pg-copy-streams";

export const BLOB_CHUNK_BYTES = 1024 * 1024;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** The signature, flags and header extension length at the start of a binary COPY. */
const COPY_HEADER = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");

export class BlobError extends Error {
  override name = "BlobError";
}

export interface StoredBlob {
  id: string;
  sizeBytes: number;
  sha256: string;
}

/**
 * Streams `source` into a new blob of `tenantId`, 1 MiB per row, with one binary
 * `COPY … FROM STDIN` on `client` (which does nothing else until this resolves); returns the
 * blob's id, size and SHA-256. The source's pieces go to the socket as they are (never joined
 * into a chunk first), with the socket's backpressure.
 */
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
  const copy = client.query(
    copyFrom("copy app_private.blob_chunks (tenant_id, blob_id, seq, data) from stdin (format binary)"),
  );
  let failed: Error | undefined;
  const finished = new Promise<void>((resolve, reject) => {
    copy.once("finish", resolve);
    copy.once("error", (error) => {
      failed = error;
      reject(error);
    });
  });
  finished.catch(() => {}); // awaited below; a failure meanwhile stops the loop
  const write = async (buffer: Buffer) => {
    if (failed) throw failed;
    if (!copy.write(buffer)) {
      await new Promise<void>((resolve) => {
        const done = () => {
          copy.off("drain", done);
          copy.off("error", done);
          resolve();
        };
        copy.on("drain", done);
        copy.on("error", done);
      });
      if (failed) throw failed;
    }
  };
  // One row: 4 fields — tenant_id (uuid), blob_id (uuid), seq (int4), data (bytea, `length` bytes).
  const tenantBytes = uuidBytes(tenantId);
  const blobBytes = uuidBytes(id);
  let seq = 0;
  const rowHeader = (length: number) => {
    const header = Buffer.alloc(2 + 4 + 16 + 4 + 16 + 4 + 4 + 4);
    let at = header.writeInt16BE(4, 0);
    at = header.writeInt32BE(16, at);
    at += tenantBytes.copy(header, at);
    at = header.writeInt32BE(16, at);
    at += blobBytes.copy(header, at);
    at = header.writeInt32BE(4, at);
    at = header.writeInt32BE(seq++, at);
    header.writeInt32BE(length, at);
    return header;
  };
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const flush = async (all: boolean) => {
    while (pendingBytes >= BLOB_CHUNK_BYTES || (all && pendingBytes > 0)) {
      const length = Math.min(BLOB_CHUNK_BYTES, pendingBytes);
      await write(rowHeader(length));
      let left = length;
      while (left > 0) {
        const piece = pending[0];
        if (piece.length <= left) {
          pending.shift();
          await write(piece);
          left -= piece.length;
        } else {
          await write(piece.subarray(0, left));
          pending[0] = piece.subarray(left);
          left = 0;
        }
      }
      pendingBytes -= length;
    }
  };
  try {
    await write(Buffer.concat([COPY_HEADER, Buffer.alloc(8)]));
    for await (const part of source) {
      const buffer = Buffer.isBuffer(part) ? part : Buffer.from(part.buffer, part.byteOffset, part.byteLength);
      if (buffer.length === 0) continue;
      hash.update(buffer);
      size += buffer.length;
      pending.push(buffer);
      pendingBytes += buffer.length;
      if (pendingBytes >= BLOB_CHUNK_BYTES) await flush(false);
    }
    await flush(true);
    pending = [];
    await write(Buffer.from([0xff, 0xff])); // the end of the data
    copy.end();
    await finished;
  } catch (error) {
    // Sends CopyFail: the COPY ends with an error (the transaction is aborted), the connection stays usable.
    if (!copy.destroyed) copy.destroy(error instanceof Error ? error : new Error(String(error)));
    await finished.catch(() => {});
    throw error;
  }
  const digest = hash.digest();
  await client.query(
    "update app_private.blobs set size_bytes = $3, sha256 = $4, finished_at = now() where tenant_id = $1 and id = $2",
    [tenantId, id, size, digest],
  );
  return { id, sizeBytes: size, sha256: digest.toString("hex") };
}

function uuidBytes(uuid: string): Buffer {
  if (!UUID.test(uuid)) throw new BlobError(`not a UUID: ${uuid}`);
  return Buffer.from(uuid.replace(/-/g, ""), "hex");
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

/**
 * Streams a blob's bytes in order with one `COPY … TO STDOUT (FORMAT binary)` on `client`, which
 * must be free for it until the iteration ends. A COPY broken off (the consumer stops early or
 * fails) cannot be resumed: the caller must then close that connection (use a dedicated one). Yields the chunks' bytes as they arrive from the socket, in
 * pieces of any size (never a whole chunk assembled, never text): memory stays at a few socket
 * buffers. `expectedBytes`, when given, is checked at the end.
 */
export async function* streamBlob(
  client: pg.ClientBase,
  tenantId: string,
  blobId: string,
  expectedBytes?: number,
): AsyncGenerator<Buffer> {
  if (!UUID.test(tenantId) || !UUID.test(blobId)) throw new BlobError(`not a blob id: ${tenantId}/${blobId}`);
  // COPY takes no parameters: the ids are checked UUIDs, written as literals.
  const stream = client.query(
    copyTo(
      `copy (select data from app_private.blob_chunks where tenant_id = '${tenantId}' and blob_id = '${blobId}' order by seq) to stdout (format binary)`,
      { objectMode: true, highWaterMark: 16 }, // object mode: socket pieces as they are, never joined
    ),
  );
  // The binary COPY format: a 19-byte header (signature, flags, header extension length), the
  // header extension, then per row: int16 field count (1 here; -1 ends the data), and per field an
  // int32 length followed by that many bytes.
  let header = Buffer.alloc(0);
  let headerNeeded = COPY_HEADER.length + 8;
  let extensionLeft = -1;
  let pending = Buffer.alloc(0); // field count / length bytes split across network chunks
  let dataLeft = 0; // bytes of the current field still to come
  let ended = false;
  let total = 0;
  try {
    for await (const piece of stream as AsyncIterable<Buffer>) {
      let at = 0;
      if (headerNeeded > 0) {
        const take = Math.min(headerNeeded, piece.length);
        header = Buffer.concat([header, piece.subarray(0, take)]);
        headerNeeded -= take;
        at = take;
        if (headerNeeded > 0) continue;
        if (!header.subarray(0, COPY_HEADER.length).equals(COPY_HEADER)) {
          throw new BlobError("the database's COPY output is not in the binary format");
        }
        extensionLeft = header.readUInt32BE(COPY_HEADER.length + 4);
      }
      if (extensionLeft > 0) {
        const skip = Math.min(extensionLeft, piece.length - at);
        extensionLeft -= skip;
        at += skip;
      }
      while (at < piece.length) {
        if (ended) throw new BlobError("the database's COPY output goes on after its end");
        if (dataLeft > 0) {
          const take = Math.min(dataLeft, piece.length - at);
          yield piece.subarray(at, at + take);
          total += take;
          dataLeft -= take;
          at += take;
          continue;
        }
        // A row's field count and the field's length: 2 + 4 bytes, or 2 bytes (-1) for the end.
        const need = 6 - pending.length;
        const take = Math.min(need, piece.length - at);
        pending = Buffer.concat([pending, piece.subarray(at, at + take)]);
        at += take;
        if (pending.length >= 2 && pending.readInt16BE(0) === -1) {
          ended = true;
          at -= pending.length - 2; // nothing may follow; checked above on the next byte
          pending = Buffer.alloc(0);
          continue;
        }
        if (pending.length < 6) continue;
        if (pending.readInt16BE(0) !== 1) throw new BlobError("the database's COPY output has an unexpected row");
        const length = pending.readInt32BE(2);
        if (length < 0) throw new BlobError("the blob has a missing chunk");
        dataLeft = length;
        pending = Buffer.alloc(0);
      }
    }
  } finally {
    // Broken off (the consumer stopped or failed): PostgreSQL goes on sending the COPY, so the
    // connection is of no further use; the caller closes it.
    if (!stream.readableEnded) stream.destroy();
  }
  if (!ended || dataLeft > 0) throw new BlobError("the blob's COPY output ended early");
  if (expectedBytes !== undefined && total !== expectedBytes) {
    throw new BlobError(`the blob has ${total} bytes, ${expectedBytes} were expected`);
  }
}
