/**
 * The Node implementation of the v1 audit hash (what v1 evidence packs and the v1 entries sealed
 * into the v2 log are checked with) agrees byte for byte with the database's, for the v1 document
 * of every entry of a seeded workspace and for values chosen to trip up canonical JSON.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditHash, canonicalJson } from "../../src/audit/canonical.ts";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";

describe.each(servers())("canonical JSON and audit hashes on $name", (server) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
  });
  afterAll(async () => {
    await t?.drop();
  });

  it("recomputes the v1 hash of every seeded entry's v1 document", async () => {
    const { rows } = await t.superuser.query<{ doc: Record<string, unknown>; hash: string }>(
      "select app_private.audit_document(e) as doc, encode(app_private.audit_hash(e), 'hex') as hash from app_public.audit_log e order by tenant_id, id",
    );
    expect(rows.length).toBeGreaterThan(200);
    for (const row of rows) expect(auditHash(row.doc), JSON.stringify(row.doc)).toBe(row.hash);
  });

  it.each([
    { a: 'quote " backslash \\ slash / tab \t newline \n nul-ish \u0001 del \u007f' },
    { ünïcödé: "東京オフィス — Łódź 🧾", z: [1, -2, 0, true, false, null, { b: 1, a: [] }] },
    { key: "\u2028\u2029 and emoji in keys", "🔑": "x", Z: 1, a: 2, ab: 3, aa: 4 },
  ])("agrees with the database on %j", async (value) => {
    const { rows } = await t.superuser.query<{ c: string }>("select app_private.canonical_json($1::jsonb) as c", [
      JSON.stringify(value),
    ]);
    expect(canonicalJson(value)).toBe(rows[0].c);
  });
});
