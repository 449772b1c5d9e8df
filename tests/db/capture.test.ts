/**
 * Capture: every create, update and delete of a tenant-owned row writes exactly one audit entry,
 * in the same transaction, with the right action, actor, resource label, diff and context.
 */
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withContext } from "../../src/db/context.ts";
import { asUser, createTestDatabase, ids, servers, type TestDatabase } from "../helpers/db.ts";
import { sealAll } from "../helpers/seal.ts";

interface Entry {
  id: string;
  action: string;
  actor_label: string;
  actor_user_id: string | null;
  db_role: string;
  resource_type: string;
  resource_label: string | null;
  incident_id: string | null;
  changes: Record<string, { old?: unknown; new?: unknown }>;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  surface: string;
}

describe.each(servers())("capture on $name", (server) => {
  let t: TestDatabase;
  let demo: string;

  beforeAll(async () => {
    t = await createTestDatabase(server, { seed: true });
    demo = (await ids(t)).tenants.demo;
  });
  afterAll(async () => {
    await t?.drop();
  });

  /** The newest capture number in tenant demo. */
  async function lastId(): Promise<number> {
    const { rows } = await t.superuser.query(
      "select coalesce(max(id), 0)::int as n from app_public.audit_log where tenant_id = $1",
      [demo],
    );
    return rows[0].n;
  }

  /** Runs `fn` and returns the audit entries it produced in tenant demo. */
  async function entriesOf(fn: () => Promise<unknown>): Promise<Entry[]> {
    const before = await lastId();
    await fn();
    const { rows } = await t.superuser.query<Entry>(
      "select id, action, actor_label, actor_user_id, db_role, resource_type, resource_label, incident_id, changes, request_id, host(ip) as ip, user_agent, surface from app_public.audit_log where tenant_id = $1 and id > $2 order by id",
      [demo, before],
    );
    return rows;
  }

  const owner = (fn: (c: pg.PoolClient) => Promise<unknown>) =>
    asUser(t, "owner@demo.test", "demo", fn, { requestId: "req-owner-1", ip: "203.0.113.7", userAgent: "vitest/1" });
  const member = (fn: (c: pg.PoolClient) => Promise<unknown>) =>
    asUser(t, "member@demo.test", "demo", fn, { surface: "graphql" });

  async function newIncident(title = "Capture test incident"): Promise<string> {
    let id = "";
    await member(async (c) => {
      const { rows } = await c.query(
        "insert into app_public.incidents (title, severity) values ($1, 'high') returning id",
        [title],
      );
      id = rows[0].id;
    });
    return id;
  }

  it("records incident.created with the actor, role, context and the new values", async () => {
    let id = "";
    const entries = await entriesOf(() =>
      owner(async (c) => {
        const { rows } = await c.query(
          "insert into app_public.incidents (title, severity, description) values ('Router compromise', 'critical', 'BGP hijack suspected') returning id",
        );
        id = rows[0].id;
      }),
    );
    expect(entries).toHaveLength(1);
    const [e] = entries;
    expect(e).toMatchObject({
      action: "incident.created",
      actor_label: "owner@demo.test",
      db_role: t.db.roles.visitor,
      resource_type: "incident",
      resource_label: "Router compromise",
      incident_id: id,
      request_id: "req-owner-1",
      ip: "203.0.113.7",
      user_agent: "vitest/1",
      surface: "web",
    });
    expect(e.changes.title).toEqual({ new: "Router compromise" });
    expect(e.changes.severity).toEqual({ new: "critical" });
    expect(e.changes.description).toEqual({ new: "BGP hijack suspected" });
    expect(e.changes).not.toHaveProperty("id");
    expect(e.changes).not.toHaveProperty("tenant_id");
  });

  it("records incident.updated with old and new values of exactly the changed fields", async () => {
    const id = await newIncident("Before rename");
    const entries = await entriesOf(() =>
      member((c) =>
        c.query("update app_public.incidents set title = 'After rename', status = 'in_progress' where id = $1", [id]),
      ),
    );
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      action: "incident.updated",
      actor_label: "member@demo.test",
      resource_label: "After rename",
      surface: "graphql",
    });
    expect(entries[0].changes).toEqual({
      title: { old: "Before rename", new: "After rename" },
      status: { old: "open", new: "in_progress" },
    });
  });

  it("records nothing for an update that changes nothing", async () => {
    const id = await newIncident();
    const entries = await entriesOf(() =>
      member((c) => c.query("update app_public.incidents set title = title, severity = 'high' where id = $1", [id])),
    );
    expect(entries).toEqual([]);
  });

  it("records incident.deleted (not incident.updated) for a soft delete, and incident.restored", async () => {
    const id = await newIncident("To be deleted");
    const deleted = await entriesOf(() =>
      owner((c) => c.query("update app_public.incidents set deleted_at = now() where id = $1", [id])),
    );
    expect(deleted.map((e) => e.action)).toEqual(["incident.deleted"]);
    expect(deleted[0].resource_label).toBe("To be deleted");
    const { rows } = await t.superuser.query("select deleted_by from app_public.incidents where id = $1", [id]);
    expect(rows[0].deleted_by).toBe((await ids(t)).users["owner@demo.test"]);
    const restored = await entriesOf(() =>
      owner((c) => c.query("update app_public.incidents set deleted_at = null where id = $1", [id])),
    );
    expect(restored.map((e) => e.action)).toEqual(["incident.restored"]);
  });

  it("records evidence.uploaded and evidence.deleted with the filename, and keeps size and SHA-256 from the stored bytes", async () => {
    const id = await newIncident("Evidence holder");
    const { writeBlob } = await import("../../src/db/blobs.ts");
    const blob = await withContext(t.pools.owner, { surface: "sql" }, (c) =>
      writeBlob(c, demo, [Buffer.from("hello evidence")]),
    );
    let evidenceId = "";
    const uploaded = await entriesOf(() =>
      member(async (c) => {
        const { rows } = await c.query(
          "insert into app_public.evidence (incident_id, filename, content_type, blob_id) values ($1, 'firewall.log', 'text/plain', $2) returning id, size_bytes, encode(sha256, 'hex') as sha",
          [id, blob.id],
        );
        evidenceId = rows[0].id;
        expect(Number(rows[0].size_bytes)).toBe(14);
        expect(rows[0].sha).toBe(blob.sha256);
      }),
    );
    expect(uploaded).toHaveLength(1);
    expect(uploaded[0]).toMatchObject({ action: "evidence.uploaded", resource_label: "firewall.log", incident_id: id });
    const deleted = await entriesOf(() =>
      member((c) => c.query("delete from app_public.evidence where id = $1", [evidenceId])),
    );
    expect(deleted).toHaveLength(1);
    expect(deleted[0]).toMatchObject({ action: "evidence.deleted", resource_label: "firewall.log", incident_id: id });
    expect(deleted[0].changes.filename).toEqual({ old: "firewall.log" });
    const left = await t.superuser.query("select count(*)::int as n from app_private.blobs where id = $1", [blob.id]);
    expect(left.rows[0].n).toBe(0);
  });

  it("creates the three NIS2 milestones when NIS2 is enabled, and records milestone.completed with notes", async () => {
    const id = await newIncident("NIS2 incident");
    const enabled = await entriesOf(() =>
      owner((c) => c.query("update app_public.incidents set nis2_enabled = true where id = $1", [id])),
    );
    expect(enabled.map((e) => e.action)).toEqual([
      "incident.updated",
      "milestone.created",
      "milestone.created",
      "milestone.created",
    ]);
    expect(enabled.slice(1).map((e) => e.resource_label)).toEqual([
      "Early Warning · NIS2 incident",
      "Full Notification · NIS2 incident",
      "Final Report · NIS2 incident",
    ]);
    const { rows: due } = await t.superuser.query(
      "select kind, extract(epoch from due_at - i.created_at)::int as after, app_public.nis2_milestones_status(m) as status from app_public.nis2_milestones m join app_public.incidents i on i.id = m.incident_id where m.incident_id = $1 order by due_at",
      [id],
    );
    expect(due.map((r) => [r.kind, r.status])).toEqual([
      ["early_warning", "pending"],
      ["full_notification", "pending"],
      ["final_report", "pending"],
    ]);
    expect(due.map((r) => r.after)).toEqual([24 * 3600, 72 * 3600, 30 * 24 * 3600]);

    const completed = await entriesOf(() =>
      member((c) =>
        c.query(
          "update app_public.nis2_milestones set completed_at = now(), notes = 'Sent to CSIRT' where incident_id = $1 and kind = 'early_warning'",
          [id],
        ),
      ),
    );
    expect(completed).toHaveLength(1);
    expect(completed[0]).toMatchObject({
      action: "milestone.completed",
      actor_label: "member@demo.test",
      incident_id: id,
    });
    expect(completed[0].changes.notes).toEqual({ old: null, new: "Sent to CSIRT" });
    const again = await entriesOf(() =>
      owner((c) => c.query("update app_public.incidents set nis2_enabled = false where id = $1", [id])),
    );
    expect(again.map((e) => e.action)).toEqual(["incident.updated"]);
  });

  it("records export.requested, ignores progress ticks, and records export.completed", async () => {
    const id = await newIncident("Exported incident");
    let exportId = "";
    const requested = await entriesOf(() =>
      owner(async (c) => {
        const { rows } = await c.query("insert into app_public.exports (incident_id) values ($1) returning id", [id]);
        exportId = rows[0].id;
      }),
    );
    expect(requested.map((e) => [e.action, e.resource_label])).toEqual([
      ["export.requested", "Evidence pack · Exported incident"],
    ]);
    const ticks = await entriesOf(() =>
      withContext(t.pools.owner, { surface: "worker" }, async (c) => {
        await c.query("update app_public.exports set status = 'building', progress = 10 where id = $1", [exportId]);
        await c.query("update app_public.exports set progress = 60 where id = $1", [exportId]);
      }),
    );
    expect(ticks).toEqual([]);
    const done = await entriesOf(() =>
      withContext(t.pools.owner, { surface: "worker" }, (c) =>
        c.query("update app_public.exports set status = 'ready', progress = 100, finished_at = now() where id = $1", [
          exportId,
        ]),
      ),
    );
    expect(done).toHaveLength(1);
    expect(done[0]).toMatchObject({
      action: "export.completed",
      actor_label: "system",
      db_role: t.db.roles.owner,
      surface: "worker",
    });
  });

  it("records webhook.created and webhook.deleted, and never the secret", async () => {
    let webhookId = "";
    const created = await entriesOf(() =>
      owner(async (c) => {
        const { rows } = await c.query(
          "insert into app_public.webhooks (url, actions) values ('https://hooks.example.com/x', '{incident.*}') returning id",
        );
        webhookId = rows[0].id;
      }),
    );
    expect(created.map((e) => [e.action, e.resource_label])).toEqual([
      ["webhook.created", "https://hooks.example.com/x"],
    ]);
    const { rows } = await t.superuser.query("select secret from app_private.webhook_secrets where webhook_id = $1", [
      webhookId,
    ]);
    expect(rows[0].secret).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(created[0])).not.toContain(rows[0].secret);
    const deleted = await entriesOf(() =>
      owner((c) => c.query("delete from app_public.webhooks where id = $1", [webhookId])),
    );
    expect(deleted.map((e) => e.action)).toEqual(["webhook.deleted"]);
  });

  it("records membership changes and refuses to remove the last owner", async () => {
    const { users } = await ids(t);
    const changed = await entriesOf(() =>
      owner((c) =>
        c.query("update app_public.memberships set role = 'admin' where user_id = $1", [users["viewer@demo.test"]]),
      ),
    );
    expect(changed.map((e) => [e.action, e.resource_label])).toEqual([["membership.updated", "viewer@demo.test"]]);
    expect(changed[0].changes).toEqual({ role: { old: "viewer", new: "admin" } });
    await owner((c) =>
      c.query("update app_public.memberships set role = 'viewer' where user_id = $1", [users["viewer@demo.test"]]),
    );
    await expect(
      owner((c) =>
        c.query("update app_public.memberships set role = 'admin' where user_id = $1", [users["owner@demo.test"]]),
      ),
    ).rejects.toThrow(/at least one owner/);
  });

  it("records api_token.revoked", async () => {
    const entries = await entriesOf(async () => {
      await withContext(t.pools.owner, { surface: "sql" }, (c) =>
        c.query(
          "insert into app_public.api_tokens (tenant_id, user_id, name, token_prefix) select $1, id, 'CI token', 'att_ci' from app_public.users where email = 'admin@demo.test'",
          [demo],
        ),
      );
      await owner((c) => c.query("update app_public.api_tokens set revoked_at = now() where name = 'CI token'"));
    });
    expect(entries.map((e) => [e.action, e.actor_label])).toEqual([
      ["api_token.created", "system"],
      ["api_token.revoked", "owner@demo.test"],
    ]);
  });

  it("writes one entry per changed row of a multi-row statement", async () => {
    const a = await newIncident("Bulk A");
    const b = await newIncident("Bulk B");
    const entries = await entriesOf(() =>
      member((c) =>
        c.query("update app_public.incidents set status = 'resolved' where id = any($1::uuid[])", [[a, b]]),
      ),
    );
    expect(entries.map((e) => [e.action, e.resource_label]).sort()).toEqual([
      ["incident.updated", "Bulk A"],
      ["incident.updated", "Bulk B"],
    ]);
  });

  it("records a field set to and from null with both sides, and a delete with the old values only", async () => {
    const id = await newIncident("Null edges");
    const set = await entriesOf(() =>
      member((c) => c.query("update app_public.incidents set root_cause = 'Expired cert' where id = $1", [id])),
    );
    expect(set.map((e) => e.changes)).toEqual([{ root_cause: { old: null, new: "Expired cert" } }]);
    const cleared = await entriesOf(() =>
      member((c) => c.query("update app_public.incidents set root_cause = null where id = $1", [id])),
    );
    expect(cleared.map((e) => e.changes)).toEqual([{ root_cause: { old: "Expired cert", new: null } }]);
    const deleted = await entriesOf(() =>
      t.superuser.query("delete from app_public.incidents where tenant_id = $1 and id = $2", [demo, id]),
    );
    expect(deleted).toHaveLength(1);
    expect(deleted[0].action).toBe("incident.deleted");
    // Only fields that were set, each with its old value only; ignored columns left out.
    expect(Object.keys(deleted[0].changes).sort()).toEqual(
      ["created_at", "created_by", "description", "nis2_enabled", "severity", "status", "title"].sort(),
    );
    expect(deleted[0].changes.title).toEqual({ old: "Null edges" });
  });

  it("runs the capture function generated from the catalog's audited tables", async () => {
    // app_private.audit_capture_source() writes one INSERT per audited resource and operation into
    // tg__audit; a table added without running it again would not be captured the same way.
    const { rows } = await t.superuser.query<{ installed: string; generated: string }>(
      `select p.prosrc as installed,
              substring(app_private.audit_capture_source() from '\\$body\\$(.*)\\$body\\$') as generated
       from pg_proc p where p.oid = 'app_private.tg__audit()'::regprocedure`,
    );
    expect(rows[0].generated.length).toBeGreaterThan(1000);
    expect(rows[0].installed).toBe(rows[0].generated);
    const resources = (
      await t.superuser.query<{ resource: string }>(
        `select distinct app_private.audit_resource_of(n.nspname, c.relname) as resource
         from pg_trigger g join pg_class c on c.oid = g.tgrelid join pg_namespace n on n.oid = c.relnamespace
         where g.tgfoid = 'app_private.tg__audit()'::regprocedure`,
      )
    ).rows.map((r) => r.resource);
    expect(resources.length).toBeGreaterThan(8);
    for (const resource of resources) expect(rows[0].installed).toContain(`when '${resource}' then`);
  });

  it("attributes a plain SQL session with no user to system and its database role", async () => {
    const entries = await entriesOf(() =>
      t.superuser.query("insert into app_public.incidents (tenant_id, title) values ($1, 'Filed by a DBA')", [demo]),
    );
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      actor_label: "system",
      actor_user_id: null,
      db_role: "postgres",
      surface: "sql",
    });
  });

  it("leaves no entry when the change is rolled back, and no gap in the log", async () => {
    const count = async () =>
      (await t.superuser.query("select count(*)::int as n from app_public.audit_log where tenant_id = $1", [demo]))
        .rows[0].n as number;
    await sealAll(t.pools.owner);
    const before = await count();
    const { rows: size } = await t.superuser.query(
      "select size::int from app_private.audit_trees where tenant_id = $1",
      [demo],
    );
    await expect(
      member(async (c) => {
        await c.query("insert into app_public.incidents (title) values ('Never happened')");
        throw new Error("abort");
      }),
    ).rejects.toThrow("abort");
    expect(await count()).toBe(before);
    const next = await entriesOf(() => newIncident("After rollback"));
    await sealAll(t.pools.owner);
    const { rows } = await t.superuser.query(
      "select seq::int from app_hidden.audit_leaves where tenant_id = $1 and entry_id = $2",
      [demo, next[0].id],
    );
    expect(rows[0].seq).toBe(size[0].size + 1);
  });

  it("seeded a few hundred entries across several users and system", async () => {
    const { rows } = await t.superuser.query(
      "select count(*)::int as n, count(distinct actor_label)::int as actors, bool_or(actor_label = 'system') as has_system from app_public.audit_log where tenant_id = $1",
      [demo],
    );
    expect(rows[0].n).toBeGreaterThanOrEqual(200);
    expect(rows[0].actors).toBeGreaterThanOrEqual(4);
    expect(rows[0].has_system).toBe(true);
  });
});
