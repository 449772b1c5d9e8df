/**
 * Ready to distribute by tenant (e.g. Citus, all tenant tables colocated): every primary, unique
 * and foreign key of a tenant-owned table leads with tenant_id, read from the catalog. Keys that
 * point at global tables (users, plans: reference tables there) are the only exception.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, servers, type TestDatabase } from "../helpers/db.ts";

describe.each(servers())("keys on $name", (server) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(server);
  });
  afterAll(async () => {
    await t?.drop();
  });

  it("every key of a tenant-owned table leads with tenant_id", async () => {
    const { rows } = await t.superuser.query<{ table: string; key: string; first: string }>(
      `with tenant_tables as (
         select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where c.relkind = 'r' and n.nspname in ('app_public', 'app_private', 'app_hidden')
           and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
       ), keys as (
         select k.conrelid as tbl, k.conname as key, k.conkey[1] as first_att
         from pg_constraint k
         where k.conrelid in (select oid from tenant_tables)
           and (k.contype in ('p', 'u') or (k.contype = 'f' and (k.confrelid in (select oid from tenant_tables)
                                                                 or k.confrelid = 'app_public.tenants'::regclass)))
         union all
         select i.indrelid, i.indexrelid::regclass::text, i.indkey[0]
         from pg_index i where i.indisunique and i.indrelid in (select oid from tenant_tables)
       )
       select k.tbl::regclass::text as table, k.key, a.attname as first
       from keys k left join pg_attribute a on a.attrelid = k.tbl and a.attnum = k.first_att
       order by 1, 2`,
    );
    expect(rows.length).toBeGreaterThan(30);
    expect(rows.filter((r) => r.first !== "tenant_id")).toEqual([]);
    // The log itself: entries, positions and checkpoints are keyed per tenant.
    expect(rows.map((r) => r.table)).toEqual(
      expect.arrayContaining(["app_public.audit_log", "app_hidden.audit_leaves", "app_public.audit_checkpoints"]),
    );
  });
});
