/**
 * Blob storage (src/db/blobs.ts) on each PostgreSQL: writeBlob's binary COPY stores 1 MiB rows
 * whatever the pieces it is given, with the right size and SHA-256; readBlob and streamBlob give
 * the same bytes back; streamBlob reads in an exported snapshot on a second connection (as the
 * pack builder does) and checks what it reads; a failing source leaves nothing once rolled back.
 */
import { createHash, randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BLOB_CHUNK_BYTES, BlobError, readBlob, streamBlob, writeBlob } from "../../src/db/blobs.ts";
import { createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";

/** `data` in pieces of varying sizes (some empty, some larger than a chunk). */
function* pieces(data: Buffer): Generator<Buffer> {
  const sizes = [1, 0, 7777, BLOB_CHUNK_BYTES + 3, 65536, 0, 300_001];
  let at = 0;
  for (let i = 0; at < data.length; i++) {
    const n = sizes[i % sizes.length];
    yield data.subarray(at, at + n);
    at += n;
  }
}

async function collect(source: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const part of source) parts.push(part);
  return Buffer.concat(parts);
}

describe.each(servers())("blobs on $name", (server) => {
  let t: TestDatabase;
  let demo: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    demo = (await ids(t)).tenants.demo;
  });
  afterAll(async () => {
    await t?.drop();
  });

  /** A transaction as the owner role (as the worker runs), rolled back unless `commit`. */
  async function asOwner<T>(fn: (c: pg.PoolClient) => Promise<T>, commit = true): Promise<T> {
    const c = await t.pools.owner.connect();
    try {
      await c.query("begin");
      const result = await fn(c);
      await c.query(commit ? "commit" : "rollback");
      return result;
    } catch (error) {
      await c.query("rollback").catch(() => {});
      throw error;
    } finally {
      c.release();
    }
  }

  it("writeBlob stores 1 MiB rows whatever the pieces; readBlob and streamBlob give the bytes back", async () => {
    const data = randomBytes(3 * BLOB_CHUNK_BYTES + 12345);
    const blob = await asOwner((c) => writeBlob(c, demo, pieces(data)));
    expect(blob.sizeBytes).toBe(data.length);
    expect(blob.sha256).toBe(createHash("sha256").update(data).digest("hex"));

    const { rows } = await t.superuser.query(
      "select seq, octet_length(data) as n from app_private.blob_chunks where tenant_id = $1 and blob_id = $2 order by seq",
      [demo, blob.id],
    );
    expect(rows).toEqual([
      { seq: 0, n: BLOB_CHUNK_BYTES },
      { seq: 1, n: BLOB_CHUNK_BYTES },
      { seq: 2, n: BLOB_CHUNK_BYTES },
      { seq: 3, n: 12345 },
    ]);
    const stored = await t.superuser.query(
      "select size_bytes::int as size, encode(sha256, 'hex') as sha256, finished_at is not null as finished from app_private.blobs where id = $1",
      [blob.id],
    );
    expect(stored.rows[0]).toEqual({ size: data.length, sha256: blob.sha256, finished: true });

    const back = await asOwner((c) => collect(readBlob(c, demo, blob.id)));
    expect(back.equals(data)).toBe(true);
    const streamed = await asOwner((c) => collect(streamBlob(c, demo, blob.id, data.length)));
    expect(streamed.equals(data)).toBe(true);
    // The connection is usable again after a complete COPY.
    await asOwner(async (c) => {
      await collect(streamBlob(c, demo, blob.id));
      expect((await c.query("select 1 as one")).rows).toEqual([{ one: 1 }]);
    });
  });

  it("an empty blob has no rows and streams nothing", async () => {
    const blob = await asOwner((c) => writeBlob(c, demo, []));
    expect(blob).toMatchObject({ sizeBytes: 0, sha256: createHash("sha256").digest("hex") });
    const { rows } = await t.superuser.query(
      "select count(*)::int as n from app_private.blob_chunks where blob_id = $1",
      [blob.id],
    );
    expect(rows[0].n).toBe(0);
    expect((await asOwner((c) => collect(streamBlob(c, demo, blob.id, 0)))).length).toBe(0);
  });

  it("streamBlob reads in the snapshot of another transaction, on a connection of its own", async () => {
    const data = randomBytes(BLOB_CHUNK_BYTES + 1);
    const blob = await asOwner((c) => writeBlob(c, demo, [data]));
    await asOwner(async (c) => {
      const snapshot = (await c.query("select pg_export_snapshot() as id")).rows[0].id as string;
      // Deleted (and committed) after the snapshot: gone for a fresh snapshot, there in the exported one.
      await t.superuser.query("delete from app_private.blobs where id = $1", [blob.id]);
      const reader = new pg.Client(t.pools.owner.options);
      await reader.connect();
      try {
        await reader.query("begin isolation level repeatable read read only");
        expect(await collect(streamBlob(reader, demo, blob.id))).toHaveLength(0);
        await reader.query("rollback");
        await reader.query("begin isolation level repeatable read read only");
        await reader.query(`set transaction snapshot '${snapshot}'`);
        expect((await collect(streamBlob(reader, demo, blob.id, data.length))).equals(data)).toBe(true);
        await reader.query("rollback");
      } finally {
        await reader.end();
      }
    }, false);
  });

  it("streamBlob checks the size it is told, and refuses ids that are not UUIDs", async () => {
    const blob = await asOwner((c) => writeBlob(c, demo, [Buffer.from("twelve bytes")]));
    await expect(asOwner((c) => collect(streamBlob(c, demo, blob.id, 13)))).rejects.toThrow(
      new BlobError("the blob has 12 bytes, 13 were expected"),
    );
    await expect(asOwner((c) => collect(streamBlob(c, demo, `${blob.id}' or true --`)))).rejects.toThrow(BlobError);
    await expect(asOwner((c) => collect(streamBlob(c, "demo", blob.id)))).rejects.toThrow(BlobError);
  });

  it("a source that fails mid-way fails writeBlob; rolled back, nothing is left and the connection works", async () => {
    const before = (await t.superuser.query("select count(*)::int as n from app_private.blobs")).rows[0].n;
    const c = await t.pools.owner.connect();
    try {
      await c.query("begin");
      await expect(
        writeBlob(
          c,
          demo,
          (async function* () {
            yield randomBytes(2 * BLOB_CHUNK_BYTES + 5);
            throw new Error("the disk went away");
          })(),
        ),
      ).rejects.toThrow("the disk went away");
      await c.query("rollback");
      expect((await c.query("select 2 as two")).rows).toEqual([{ two: 2 }]);
    } finally {
      c.release();
    }
    expect((await t.superuser.query("select count(*)::int as n from app_private.blobs")).rows[0].n).toBe(before);
  });
});
