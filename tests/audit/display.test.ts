/**
 * src/audit/display.ts: every action the log records reads as words, every column of every
 * audited table has a label a person understands (or is kept to the raw JSON), and each kind of
 * value is shown as people say it — enums, users, sizes, dates, booleans, lists, hashes, numbers.
 */
import { describe, expect, it } from "vitest";
import {
  type AuditUser,
  actionTitle,
  changeLine,
  type EntryLike,
  entryChanges,
  entryView,
  fieldLabel,
  formatDate,
  formatSize,
  formatValue,
  isInternalField,
  resourceHref,
  userIdsOf,
} from "../../src/audit/display.ts";

const OWNER: AuditUser = { id: "11111111-1111-4111-8111-111111111111", name: "Olivia Owner", email: "owner@demo.test" };
const NAMELESS: AuditUser = { id: "22222222-2222-4222-8222-222222222222", name: "", email: "nameless@demo.test" };
const GONE = "33333333-3333-4333-8333-333333333333";
const INCIDENT = "44444444-4444-4444-8444-444444444444";
const users = new Map([OWNER, NAMELESS].map((u) => [u.id, u]));
const context = { users, slug: "demo" };
const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/;

function entry(action: string, changes: EntryLike["changes"], more: Partial<EntryLike> = {}): EntryLike {
  const resource = action.slice(0, action.indexOf("."));
  return {
    action,
    resource_type: resource,
    resource_id: INCIDENT,
    resource_label: "Label",
    incident_id: ["incident", "evidence", "milestone", "export"].includes(resource) ? INCIDENT : null,
    actor_user_id: OWNER.id,
    actor_label: OWNER.email,
    changes,
    ...more,
  };
}

const at = "2026-11-26T03:21:51.156+00:00";

/** One entry of every action the log records (app_private.audit_action), with the diff capture writes. */
const EVERY_ACTION: Array<[string, EntryLike, string]> = [
  [
    "incident.created",
    entry("incident.created", {
      title: { new: "Ransomware" },
      severity: { new: "high" },
      status: { new: "open" },
      description: { new: "" },
      nis2_enabled: { new: false },
      created_by: { new: OWNER.id },
      created_at: { new: at },
    }),
    "Incident created",
  ],
  [
    "incident.updated",
    entry("incident.updated", {
      severity: { old: "high", new: "critical" },
      status: { old: "open", new: "in_progress" },
    }),
    "Incident updated",
  ],
  ["incident.deleted", entry("incident.deleted", { deleted_at: { old: null, new: at } }), "Incident deleted"],
  ["incident.restored", entry("incident.restored", { deleted_at: { old: at, new: null } }), "Incident restored"],
  [
    "evidence.uploaded",
    entry("evidence.uploaded", {
      filename: { new: "firewall.log" },
      content_type: { new: "text/plain" },
      size_bytes: { new: 2_516_582 },
      sha256: { new: "\\x0B9590475b3175110683c2be528e37405bd3e5e644119728e42ecaba20093094" },
      blob_id: { new: "55555555-5555-4555-8555-555555555555" },
      incident_id: { new: INCIDENT },
      uploaded_by: { new: OWNER.id },
      created_at: { new: at },
    }),
    "Evidence uploaded",
  ],
  ["evidence.updated", entry("evidence.updated", { filename: { old: "a.log", new: "b.log" } }), "Evidence updated"],
  [
    "evidence.deleted",
    entry("evidence.deleted", { filename: { old: "a.log" }, size_bytes: { old: 44 }, uploaded_by: { old: GONE } }),
    "Evidence deleted",
  ],
  [
    "milestone.created",
    entry("milestone.created", {
      kind: { new: "early_warning" },
      due_at: { new: at },
      incident_id: { new: INCIDENT },
      created_at: { new: at },
    }),
    "NIS2 milestone created",
  ],
  [
    "milestone.completed",
    entry("milestone.completed", {
      completed_at: { old: null, new: at },
      notes: { old: null, new: "Sent to the CSIRT" },
    }),
    "NIS2 milestone completed",
  ],
  [
    "milestone.reopened",
    entry("milestone.reopened", { completed_at: { old: at, new: null } }),
    "NIS2 milestone reopened",
  ],
  ["milestone.updated", entry("milestone.updated", { notes: { old: "a", new: "b" } }), "NIS2 milestone updated"],
  [
    "export.requested",
    entry("export.requested", {
      status: { new: "queued" },
      requested_by: { new: OWNER.id },
      download_count: { new: 0 },
      incident_id: { new: INCIDENT },
    }),
    "Evidence pack requested",
  ],
  [
    "export.completed",
    entry("export.completed", {
      status: { old: "building", new: "ready" },
      finished_at: { old: null, new: at },
      result_blob_id: { old: null, new: "66666666-6666-4666-8666-666666666666" },
    }),
    "Evidence pack completed",
  ],
  [
    "export.failed",
    entry("export.failed", { status: { old: "building", new: "failed" }, error: { old: null, new: "disk full" } }),
    "Evidence pack failed",
  ],
  ["export.downloaded", entry("export.downloaded", { download_count: { old: 1, new: 2 } }), "Evidence pack downloaded"],
  [
    "webhook.created",
    entry("webhook.created", {
      url: { new: "https://tickets.example.com/attest" },
      actions: { new: ["incident.*", "evidence.uploaded"] },
      active: { new: true },
      description: { new: "Ticketing" },
      created_by: { new: OWNER.id },
    }),
    "Webhook created",
  ],
  ["webhook.updated", entry("webhook.updated", { actions: { old: ["incident.*"], new: [] } }), "Webhook updated"],
  [
    "webhook.disabled",
    entry("webhook.disabled", {
      active: { old: true, new: false },
      disabled_reason: { old: null, new: "10 failed deliveries" },
    }),
    "Webhook disabled",
  ],
  ["webhook.enabled", entry("webhook.enabled", { active: { old: false, new: true } }), "Webhook enabled"],
  ["webhook.deleted", entry("webhook.deleted", { url: { old: "https://x.example" } }), "Webhook deleted"],
  [
    "membership.created",
    entry("membership.created", { role: { new: "viewer" }, user_id: { new: NAMELESS.id }, created_at: { new: at } }),
    "Membership created",
  ],
  ["membership.updated", entry("membership.updated", { role: { old: "admin", new: "member" } }), "Membership updated"],
  [
    "membership.deleted",
    entry("membership.deleted", { role: { old: "viewer" }, user_id: { old: GONE } }),
    "Membership deleted",
  ],
  [
    "api_token.created",
    entry("api_token.created", {
      name: { new: "SIEM export" },
      token_prefix: { new: "att_demo" },
      user_id: { new: OWNER.id },
      expires_at: { new: at },
    }),
    "API token created",
  ],
  ["api_token.revoked", entry("api_token.revoked", { revoked_at: { old: null, new: at } }), "API token revoked"],
  ["api_token.updated", entry("api_token.updated", { name: { old: "a", new: "b" } }), "API token updated"],
  ["api_token.deleted", entry("api_token.deleted", { name: { old: "SIEM export" } }), "API token deleted"],
  [
    "tenant.created",
    entry("tenant.created", { name: { new: "Demo Energy GmbH" }, slug: { new: "demo" }, plan_id: { new: "business" } }),
    "Tenant created",
  ],
  ["tenant.updated", entry("tenant.updated", { plan_id: { old: "basic", new: "business" } }), "Tenant updated"],
  [
    "session.signed_in",
    entry("session.signed_in", { kind: { new: "signed_in" }, email: { new: OWNER.email }, user_id: { new: OWNER.id } }),
    "Signed in",
  ],
  ["session.signed_out", entry("session.signed_out", { kind: { new: "signed_out" } }), "Signed out"],
  [
    "session.sign_in_failed",
    entry(
      "session.sign_in_failed",
      { kind: { new: "sign_in_failed" }, email: { new: "x@y.z" } },
      { actor_user_id: null, actor_label: "system" },
    ),
    "Sign-in failed",
  ],
];

describe("audit entries in words", () => {
  it.each(EVERY_ACTION)("%s reads as words, with no id or raw value in sight", (_action, e, title) => {
    const view = entryView(e, context);
    expect(view.title).toBe(title);
    for (const change of view.changes) {
      const line = changeLine(change);
      expect(line, line).not.toMatch(UUID);
      // No bytea text, raw enum values or column names.
      expect(line, line).not.toMatch(
        /\\x|\b(in_progress|early_warning|full_notification|final_report|signed_in|signed_out|sign_in_failed|[a-z]+_(at|by|id|bytes|type|count|enabled|reason))\b/,
      );
      expect(change.label).not.toBe(change.field);
    }
    // Everything left out is an id or bookkeeping, kept for the raw JSON.
    for (const field of view.hidden) expect(isInternalField(e.resource_type, field), field).toBe(true);
    expect(view.changes.length + view.hidden.length).toBe(Object.keys(e.changes ?? {}).length);
  });

  it('says "Severity: High → Critical", and orders the fields people look for first', () => {
    const { changes } = entryChanges(EVERY_ACTION[1][1], context);
    expect(changes.map(changeLine)).toEqual(["Severity: High → Critical", "Status: Open → In progress"]);
    const created = entryChanges(EVERY_ACTION[0][1], context);
    expect(created.changes.map(changeLine)).toEqual([
      "Title: Ransomware",
      "Severity: High",
      "Status: Open",
      "NIS2 reporting: Off",
      "Description: (empty)",
      "Created by: Olivia Owner (owner@demo.test)",
    ]);
    expect(created.hidden).toEqual(["created_at"]);
    expect(changeLine(entryChanges(EVERY_ACTION[6][1], context).changes[0])).toBe("File name: a.log (removed)");
  });

  it("labels every column of every audited table, or keeps it for the raw JSON", () => {
    const columns: Record<string, string[]> = {
      incident: [
        "title",
        "severity",
        "status",
        "description",
        "root_cause",
        "lessons_learned",
        "nis2_enabled",
        "created_by",
        "deleted_at",
      ],
      evidence: ["filename", "content_type", "size_bytes", "sha256", "uploaded_by"],
      milestone: ["kind", "due_at", "completed_at", "notes"],
      export: ["requested_by", "status", "error", "finished_at", "download_count", "started_at"],
      webhook: ["url", "description", "actions", "active", "created_by", "disabled_reason"],
      membership: ["role"],
      api_token: ["user_id", "name", "token_prefix", "expires_at", "revoked_at"],
      tenant: ["slug", "name", "plan_id"],
      session: ["kind"],
    };
    const labels = Object.entries(columns).flatMap(([resource, fields]) =>
      fields.map((f) => `${resource}.${f}: ${fieldLabel(resource, f)}`),
    );
    expect(labels).toEqual([
      "incident.title: Title",
      "incident.severity: Severity",
      "incident.status: Status",
      "incident.description: Description",
      "incident.root_cause: Root cause",
      "incident.lessons_learned: Lessons learned",
      "incident.nis2_enabled: NIS2 reporting",
      "incident.created_by: Created by",
      "incident.deleted_at: Deleted",
      "evidence.filename: File name",
      "evidence.content_type: File type",
      "evidence.size_bytes: Size",
      "evidence.sha256: SHA-256",
      "evidence.uploaded_by: Uploaded by",
      "milestone.kind: Milestone",
      "milestone.due_at: Due",
      "milestone.completed_at: Completed",
      "milestone.notes: Notes",
      "export.requested_by: Requested by",
      "export.status: Pack status",
      "export.error: Error",
      "export.finished_at: Finished",
      "export.download_count: Downloads",
      "export.started_at: Started",
      "webhook.url: URL",
      "webhook.description: Description",
      "webhook.actions: Actions",
      "webhook.active: State",
      "webhook.created_by: Created by",
      "webhook.disabled_reason: Why disabled",
      "membership.role: Role",
      "api_token.user_id: Acts as",
      "api_token.name: Name",
      "api_token.token_prefix: Token prefix",
      "api_token.expires_at: Expires",
      "api_token.revoked_at: Revoked",
      "tenant.slug: Slug",
      "tenant.name: Name",
      "tenant.plan_id: Plan",
      "session.kind: Event",
    ]);
    for (const [resource, field] of [
      ["incident", "id"],
      ["incident", "tenant_id"],
      ["evidence", "blob_id"],
      ["evidence", "incident_id"],
      ["export", "result_blob_id"],
      ["export", "pdf_blob_id"],
      ["export", "progress"],
      ["membership", "user_id"],
      ["session", "user_id"],
      ["session", "email"],
      ["webhook", "consecutive_failures"],
      ["incident", "created_at"],
    ]) {
      expect(isInternalField(resource, field), `${resource}.${field}`).toBe(true);
    }
    expect(fieldLabel("incident", "a_new_column")).toBe("A new column");
  });

  it("shows each kind of value as people say it", () => {
    const v = (resource: string, field: string, value: unknown) => formatValue(resource, field, value, context);
    expect(v("incident", "severity", "critical")).toMatchObject({ text: "Critical", kind: "enum" });
    expect(v("incident", "status", "in_progress")).toMatchObject({ text: "In progress", kind: "enum" });
    expect(v("export", "status", "ready")).toMatchObject({ text: "Ready", kind: "enum" });
    expect(v("milestone", "kind", "full_notification").text).toBe("Full Notification");
    expect(v("membership", "role", "viewer").text).toBe("Viewer");
    expect(v("tenant", "plan_id", "basic").text).toBe("Basic");
    expect(v("incident", "severity", "unheard_of").text).toBe("Unheard of");
    expect(v("incident", "created_by", OWNER.id)).toEqual({
      text: "Olivia Owner (owner@demo.test)",
      kind: "user",
      href: "/t/demo/members",
    });
    expect(v("incident", "created_by", NAMELESS.id).text).toBe("nameless@demo.test");
    expect(v("incident", "created_by", GONE)).toMatchObject({ text: "a former member", kind: "user" });
    expect(formatValue("incident", "created_by", OWNER.id).text).toBe("a user"); // no directory: no names
    expect(v("evidence", "size_bytes", 2_516_582)).toEqual({ text: "2.4 MB", kind: "size", title: "2,516,582 bytes" });
    expect(v("evidence", "sha256", "\\xAB12")).toEqual({ text: "ab12", kind: "hash" });
    expect(v("incident", "due_at", at)).toEqual({
      text: "2026-11-26 03:21 UTC",
      kind: "date",
      datetime: "2026-11-26T03:21:51.156Z",
    });
    expect(v("incident", "deleted_at", "not a date")).toMatchObject({ text: "not a date", kind: "text" });
    expect(v("incident", "nis2_enabled", true).text).toBe("On");
    expect(v("webhook", "active", false).text).toBe("Disabled");
    expect(v("x", "flag", true).text).toBe("Yes");
    expect(v("webhook", "actions", [])).toEqual({ text: "All actions", kind: "list" });
    expect(v("webhook", "actions", ["incident.*", "evidence.uploaded"]).text).toBe("incident.*, evidence.uploaded");
    expect(v("export", "download_count", 12345)).toEqual({ text: "12,345", kind: "number" });
    expect(v("incident", "title", null)).toEqual({ text: "—", kind: "none" });
    expect(v("incident", "description", "")).toEqual({ text: "(empty)", kind: "none" });
    expect(v("incident", "description", "line one\nline two").kind).toBe("long");
    expect(v("incident", "description", "x".repeat(81)).kind).toBe("long");
    expect(v("x", "blob", { a: 1 })).toEqual({ text: '{"a":1}', kind: "text" });
  });

  it("formats sizes and dates", () => {
    expect([0, 512, 1024, 1536, 10 * 1024, 2_516_582, 5 * 1024 ** 3, 3 * 1024 ** 4].map(formatSize)).toEqual([
      "0 B",
      "512 B",
      "1 KB",
      "1.5 KB",
      "10 KB",
      "2.4 MB",
      "5 GB",
      "3 TB",
    ]);
    expect(formatDate("2026-11-26 03:21:51+00")).toEqual({
      text: "2026-11-26 03:21 UTC",
      iso: "2026-11-26T03:21:51.000Z",
    });
    expect(formatDate("2026-11-26T05:21:51+02:00")?.text).toBe("2026-11-26 03:21 UTC");
    expect(formatDate("2026-02-31T00:00:00Z")).toBeNull();
    expect(formatDate("yesterday")).toBeNull();
  });

  it("names the actor, links actor and resource to their pages", () => {
    const view = entryView(EVERY_ACTION[1][1], context);
    expect(view.actor).toEqual({
      name: "Olivia Owner",
      email: "owner@demo.test",
      system: false,
      href: "/t/demo/members",
    });
    expect(view.resource).toEqual({ kind: "Incident", label: "Label", href: `/t/demo/incidents/${INCIDENT}` });
    const system = entryView(EVERY_ACTION[31][1], context);
    expect(system.actor).toEqual({ name: "System", email: null, system: true, href: null });
    // An actor who is no longer visible keeps the email the entry recorded.
    const gone = entryView({ ...EVERY_ACTION[1][1], actor_user_id: GONE, actor_label: "left@demo.test" }, context);
    expect(gone.actor).toMatchObject({ name: "left@demo.test", email: null });
    const pdf = entryView(EVERY_ACTION[1][1], { users });
    expect(pdf.resource.href).toBeNull();
    expect(pdf.actor.href).toBeNull();

    const hrefs = Object.fromEntries(
      EVERY_ACTION.map(([a, e]) => [a.slice(0, a.indexOf(".")), resourceHref(e, "demo")]),
    );
    expect(hrefs).toEqual({
      incident: `/t/demo/incidents/${INCIDENT}`,
      evidence: `/t/demo/incidents/${INCIDENT}#evidence`,
      milestone: `/t/demo/incidents/${INCIDENT}`,
      export: `/t/demo/incidents/${INCIDENT}`,
      webhook: "/t/demo/webhooks",
      membership: "/t/demo/members",
      api_token: "/t/demo/tokens",
      tenant: null,
      session: "/t/demo/members",
    });
    expect(actionTitle("audit_log.exported")).toBe("Audit log exported");
    expect(actionTitle("widget.frobbed")).toBe("Widget frobbed");
  });

  it("collects every user id a page's entries mention, once", () => {
    const ids = userIdsOf(EVERY_ACTION.map(([, e]) => e));
    expect(new Set(ids)).toEqual(new Set([OWNER.id, NAMELESS.id, GONE]));
    expect(ids.length).toBe(3);
    expect(
      userIdsOf([entry("incident.updated", { created_by: { new: "not-a-uuid" } }, { actor_user_id: null })]),
    ).toEqual([]);
  });
});
