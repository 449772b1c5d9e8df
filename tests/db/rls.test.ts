/**
 * Scope: row-level security decides what each signed-in user sees and changes.
 * Matrix: owner / admin / member / viewer × own / other tenant × auditLog on / off,
 * plus API tokens bound to one tenant and connections with no user at all.
 */
import { createHash, randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withContext } from "../../src/db/context.ts";
import { asUser, createTestDatabase, type Ids, ids, servers, sqlState, type TestDatabase } from "../helpers/db.ts";

const count = async (c: pg.ClientBase, table: string) =>
  (await c.query(`select count(*)::int as n from app_public.${table}`)).rows[0].n as number;

describe.each(servers())("row-level security on $name", (server) => {
  let t: TestDatabase;
  let known: Ids;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    known = await ids(t);
    // A webhook and an export in demo so that the manager-only tables have rows to hide.
    await withContext(t.pools.owner, { surface: "sql" }, async (c) => {
      await c.query("insert into app_public.webhooks (tenant_id, url) values ($1, 'https://siem.example.com/2')", [
        known.tenants.demo,
      ]);
      await c.query(
        "insert into app_public.exports (tenant_id, incident_id) select tenant_id, id from app_public.incidents where tenant_id = $1 limit 1",
        [known.tenants.demo],
      );
    });
  });
  afterAll(async () => {
    await t?.drop();
  });

  const auditCount = (email: string, tenant: string) => asUser(t, email, tenant, (c) => count(c, "audit_log"));

  describe("the audit log", () => {
    it.each([
      ["owner@demo.test", true],
      ["admin@demo.test", true],
      ["member@demo.test", false],
      ["viewer@demo.test", false],
    ])("in a tenant with auditLog, %s sees entries: %s", async (email, sees) => {
      const n = await auditCount(email, "demo");
      if (sees) expect(n).toBeGreaterThan(100);
      else expect(n).toBe(0);
    });

    it("shows only the current tenant's entries", async () => {
      const tenantsSeen = await asUser(t, "owner@demo.test", "demo", async (c) =>
        (await c.query("select distinct tenant_id from app_public.audit_log")).rows.map((r) => r.tenant_id),
      );
      expect(tenantsSeen).toEqual([known.tenants.demo]);
    });

    it("shows nothing of a tenant the user does not belong to, even when asked for it", async () => {
      expect(await auditCount("owner@demo.test", "basic")).toBe(0);
      expect(await asUser(t, "owner@demo.test", "basic", (c) => count(c, "incidents"))).toBe(0);
    });

    it("refuses the owner of a tenant without auditLog with a plan error, while still recording", async () => {
      await expect(auditCount("owner@basic.test", "basic")).rejects.toMatchObject({
        code: "ATPLN",
        message: expect.stringMatching(/not in your plan/),
      });
      expect(await auditCount("admin@demo.test", "basic")).toBe(0); // viewer there
      const { rows } = await t.superuser.query(
        "select count(*)::int as n from app_public.audit_log where tenant_id = $1",
        [known.tenants.basic],
      );
      expect(rows[0].n).toBeGreaterThan(0);
    });

    it("reveals the full history once the plan gains auditLog", async () => {
      const client = new pg.Client({ connectionString: t.superUrl });
      await client.connect();
      try {
        await client.query("begin");
        await client.query("update app_public.tenants set plan_id = 'business' where slug = 'basic'");
        const recorded = (
          await client.query("select count(*)::int as n from app_public.audit_log where tenant_id = $1", [
            known.tenants.basic,
          ])
        ).rows[0].n;
        // See it as the owner of basic, inside the same (uncommitted) transaction.
        const token = randomBytes(16).toString("hex");
        await client.query("insert into app_private.sessions (token_hash, user_id) values ($1, $2)", [
          createHash("sha256").update(token).digest(),
          known.users["owner@basic.test"],
        ]);
        await client.query(
          "select set_config('role', $1, true), set_config('attest.session_token', $2, true), set_config('attest.tenant_id', $3, true)",
          [t.db.roles.visitor, token, known.tenants.basic],
        );
        expect(await count(client, "audit_log")).toBe(recorded);
      } finally {
        await client.query("rollback");
        await client.end();
      }
    });
  });

  describe("workspace tables", () => {
    it.each(["owner@demo.test", "admin@demo.test", "member@demo.test", "viewer@demo.test"])(
      "%s sees the tenant's incidents, milestones, evidence and members",
      async (email) => {
        const seen = await asUser(t, email, "demo", async (c) => ({
          incidents: await count(c, "incidents"),
          milestones: await count(c, "nis2_milestones"),
          evidence: await count(c, "evidence"),
          memberships: await count(c, "memberships"),
        }));
        expect(seen.incidents).toBeGreaterThanOrEqual(12);
        expect(seen.milestones).toBe(12);
        expect(seen.evidence).toBeGreaterThan(5);
        expect(seen.memberships).toBe(4);
      },
    );

    it.each([
      ["owner@demo.test", true],
      ["admin@demo.test", true],
      ["member@demo.test", false],
      ["viewer@demo.test", false],
    ])("webhooks, exports and API tokens: %s sees them: %s", async (email, sees) => {
      const seen = await asUser(t, email, "demo", async (c) => [
        await count(c, "webhooks"),
        await count(c, "exports"),
        await count(c, "api_tokens"),
      ]);
      if (sees) expect(seen.every((n) => n > 0)).toBe(true);
      else expect(seen).toEqual([0, 0, 0]);
    });

    it("a user in two tenants sees each only when acting in it", async () => {
      const inDemo = await asUser(t, "admin@demo.test", "demo", async (c) =>
        (await c.query("select distinct tenant_id from app_public.incidents")).rows.map((r) => r.tenant_id),
      );
      const inBasic = await asUser(t, "admin@demo.test", "basic", async (c) =>
        (await c.query("select distinct tenant_id from app_public.incidents")).rows.map((r) => r.tenant_id),
      );
      expect(inDemo).toEqual([known.tenants.demo]);
      expect(inBasic).toEqual([known.tenants.basic]);
      const tenants = await asUser(t, "admin@demo.test", "demo", async (c) =>
        (await c.query("select slug from app_public.tenants order by slug")).rows.map((r) => r.slug),
      );
      expect(tenants).toEqual(["basic", "demo"]);
    });

    it.each([
      ["owner@demo.test", "ok"],
      ["admin@demo.test", "ok"],
      ["member@demo.test", "ok"],
      ["viewer@demo.test", "42501"],
    ])("creating an incident as %s: %s", async (email, expected) => {
      expect(
        await sqlState(
          asUser(t, email, "demo", (c) => c.query("insert into app_public.incidents (title) values ('RLS check')")),
        ),
      ).toBe(expected);
    });

    it("a viewer's update changes nothing", async () => {
      const changed = await asUser(t, "viewer@demo.test", "demo", (c) =>
        c.query("update app_public.incidents set status = 'closed'"),
      );
      expect(changed.rowCount).toBe(0);
    });

    it("an incident cannot be created in another tenant, even by naming it", async () => {
      const state = await sqlState(
        asUser(t, "owner@demo.test", "demo", (c) =>
          c.query("insert into app_public.incidents (tenant_id, title) values ($1, 'Cross-tenant')", [
            known.tenants.basic,
          ]),
        ),
      );
      expect(state).toBe("42501");
    });

    it("another tenant's rows cannot be changed or deleted", async () => {
      const result = await asUser(t, "owner@demo.test", "demo", async (c) => [
        (
          await c.query("update app_public.incidents set title = 'hijacked' where tenant_id = $1", [
            known.tenants.basic,
          ])
        ).rowCount,
        (await c.query("delete from app_public.webhooks where tenant_id = $1", [known.tenants.basic])).rowCount,
      ]);
      expect(result).toEqual([0, 0]);
    });

    it("only the owner manages members", async () => {
      const attempt = (email: string) =>
        sqlState(
          asUser(t, email, "demo", (c) =>
            c
              .query("update app_public.memberships set role = 'admin' where user_id = $1", [
                known.users["viewer@demo.test"],
              ])
              .then((r) => {
                if (r.rowCount === 0) throw Object.assign(new Error("no row"), { code: "no rows" });
              }),
          ),
        );
      expect(await attempt("admin@demo.test")).toBe("no rows");
      expect(await attempt("member@demo.test")).toBe("no rows");
      expect(await attempt("owner@demo.test")).toBe("ok");
    });

    it("NIS2 reporting is refused on a plan without nis2Timeline", async () => {
      await t.superuser.query("update app_public.tenants set plan_id = 'free' where slug = 'basic'");
      try {
        const state = await sqlState(
          asUser(t, "owner@basic.test", "basic", (c) => c.query("update app_public.incidents set nis2_enabled = true")),
        );
        expect(state).toBe("42501");
      } finally {
        await t.superuser.query("update app_public.tenants set plan_id = 'basic' where slug = 'basic'");
      }
    });
  });

  describe("connections without a user", () => {
    it("an anonymous visitor (no session) sees nothing", async () => {
      const seen = await withContext(t.pools.auth, { role: t.db.roles.visitor, surface: "web" }, async (c) => [
        await count(c, "incidents"),
        await count(c, "audit_log"),
        await count(c, "tenants"),
        await count(c, "users"),
      ]);
      expect(seen).toEqual([0, 0, 0, 0]);
    });

    it("an expired or revoked session counts as no session", async () => {
      const token = randomBytes(16).toString("hex");
      await t.superuser.query(
        "insert into app_private.sessions (token_hash, user_id, expires_at) values ($1, $2, now() - interval '1 minute')",
        [createHash("sha256").update(token).digest(), known.users["owner@demo.test"]],
      );
      const n = await withContext(
        t.pools.auth,
        { role: t.db.roles.visitor, sessionToken: token, tenant: known.tenants.demo, surface: "web" },
        (c) => count(c, "incidents"),
      );
      expect(n).toBe(0);
    });

    it("the authenticator without switching role reads nothing (NOINHERIT fails closed)", async () => {
      const client = new pg.Client({ connectionString: t.db.authUrl });
      await client.connect();
      try {
        expect(await sqlState(client.query("select * from app_public.incidents"))).toBe("42501");
        expect(await sqlState(client.query("select * from app_public.audit_log"))).toBe("42501");
      } finally {
        await client.end();
      }
    });

    it("an API token acts in its own tenant only, whatever tenant is asked for", async () => {
      const secret = `att_${randomBytes(16).toString("hex")}`;
      await withContext(t.pools.owner, { surface: "sql" }, async (c) => {
        const { rows } = await c.query(
          "insert into app_public.api_tokens (tenant_id, user_id, name, token_prefix) values ($1, $2, 'RLS token', 'att_') returning id",
          [known.tenants.demo, known.users["admin@demo.test"]],
        );
        await c.query(
          "insert into app_private.api_token_secrets (tenant_id, token_id, token_hash) values ($1, $2, $3)",
          [known.tenants.demo, rows[0].id, createHash("sha256").update(secret).digest()],
        );
      });
      const asToken = (tenant: string) =>
        withContext(
          t.pools.auth,
          { role: t.db.roles.visitor, apiToken: secret, tenant, surface: "graphql" },
          async (c) => ({
            tenants: (await c.query("select slug from app_public.tenants")).rows.map((r) => r.slug),
            audit: await count(c, "audit_log"),
          }),
        );
      expect(await asToken(known.tenants.basic)).toEqual(await asToken(known.tenants.demo));
      const seen = await asToken(known.tenants.basic);
      expect(seen.tenants).toEqual(["demo"]);
      expect(seen.audit).toBeGreaterThan(100);
      await t.superuser.query("update app_public.api_tokens set revoked_at = now() where name = 'RLS token'");
      expect((await asToken(known.tenants.demo)).audit).toBe(0);
    });
  });
});
