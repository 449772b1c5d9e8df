/**
 * Audit entries as people read them: human field labels ("Severity", "Root cause"), enum values as
 * people say them ("In progress", "Early Warning"), user ids as names with emails, sizes in KB/MB,
 * dates as dates, hashes in hex, and ids and bookkeeping columns kept out of sight (they stay in
 * the raw JSON). Used by the Audit Log page, an entry's permalink page, the incident timeline and
 * the evidence pack's PDF report, so all of them say the same thing the same way.
 *
 * Pure functions over plain data: no database, no HTML (templates escape what they print).
 */

/** A user an entry names, as the viewer may see them (RLS decides who that is). */
export interface AuditUser {
  id: string;
  name: string;
  email: string;
}
export type UserDirectory = ReadonlyMap<string, AuditUser>;

/** The columns of an entry the formatting needs (a page row, a pack's leaf body, …). */
export interface EntryLike {
  action: string;
  resource_type: string;
  resource_id?: string | null;
  resource_label: string | null;
  incident_id: string | null;
  actor_user_id?: string | null;
  actor_label: string;
  changes: Record<string, { old?: unknown; new?: unknown }> | null;
}

export type ValueKind =
  | "text"
  | "long"
  | "enum"
  | "user"
  | "size"
  | "date"
  | "bool"
  | "list"
  | "hash"
  | "number"
  | "none";

/** One value, ready to print. `datetime` (ISO, UTC) is set for dates, `title` for a longer form. */
export interface Shown {
  text: string;
  kind: ValueKind;
  title?: string;
  datetime?: string;
  href?: string;
}

export interface FieldChange {
  field: string;
  label: string;
  /** Absent when the field had no old value in this entry (creates), or no new one (deletes). */
  old?: Shown;
  new?: Shown;
}

export interface EntryView {
  /** The action in words: "Incident updated". */
  title: string;
  /** The fields a person reads, in a stable order. */
  changes: FieldChange[];
  /** Fields left out of `changes` (ids, internal columns): they are in the raw JSON. */
  hidden: string[];
  actor: { name: string; email: string | null; system: boolean; href: string | null };
  resource: { kind: string; label: string; href: string | null };
}

// ---------------------------------------------------------------------------------------------
// Vocabulary

const RESOURCE_NAMES: Record<string, string> = {
  incident: "Incident",
  evidence: "Evidence",
  milestone: "NIS2 milestone",
  export: "Evidence pack",
  webhook: "Webhook",
  membership: "Membership",
  api_token: "API token",
  tenant: "Tenant",
  session: "Sign-in",
};

const VERBS: Record<string, string> = {
  created: "created",
  updated: "updated",
  deleted: "deleted",
  restored: "restored",
  uploaded: "uploaded",
  completed: "completed",
  reopened: "reopened",
  requested: "requested",
  failed: "failed",
  downloaded: "downloaded",
  enabled: "enabled",
  disabled: "disabled",
  revoked: "revoked",
  exported: "exported",
};

const ACTION_TITLES: Record<string, string> = {
  "session.signed_in": "Signed in",
  "session.signed_out": "Signed out",
  "session.sign_in_failed": "Sign-in failed",
  "audit_log.exported": "Audit log exported",
};

/** The resource type in words: "NIS2 milestone". */
export function resourceName(type: string): string {
  return RESOURCE_NAMES[type] ?? humanize(type);
}

/** The action in words: "incident.updated" → "Incident updated", "session.signed_in" → "Signed in". */
export function actionTitle(action: string): string {
  if (ACTION_TITLES[action]) return ACTION_TITLES[action];
  const dot = action.indexOf(".");
  if (dot < 0) return humanize(action);
  const resource = action.slice(0, dot);
  const verb = action.slice(dot + 1);
  return `${resourceName(resource)} ${VERBS[verb] ?? humanize(verb).toLowerCase()}`;
}

/** "lessons_learned" → "Lessons learned". */
export function humanize(name: string): string {
  const words = name.replace(/[_.]+/g, " ").trim();
  return words ? words[0].toUpperCase() + words.slice(1) : name;
}

/** Labels per field; `resource:field` wins over `field`. */
const LABELS: Record<string, string> = {
  title: "Title",
  severity: "Severity",
  status: "Status",
  description: "Description",
  root_cause: "Root cause",
  lessons_learned: "Lessons learned",
  nis2_enabled: "NIS2 reporting",
  created_by: "Created by",
  created_at: "Created",
  deleted_at: "Deleted",
  deleted_by: "Deleted by",
  filename: "File name",
  content_type: "File type",
  size_bytes: "Size",
  sha256: "SHA-256",
  uploaded_by: "Uploaded by",
  incident_id: "Incident",
  due_at: "Due",
  completed_at: "Completed",
  completed_by: "Completed by",
  notes: "Notes",
  requested_by: "Requested by",
  error: "Error",
  started_at: "Started",
  finished_at: "Finished",
  download_count: "Downloads",
  url: "URL",
  actions: "Actions",
  active: "State",
  disabled_reason: "Why disabled",
  role: "Role",
  user_id: "User",
  name: "Name",
  token_prefix: "Token prefix",
  expires_at: "Expires",
  revoked_at: "Revoked",
  last_used_at: "Last used",
  slug: "Slug",
  plan_id: "Plan",
  email: "Email",
  kind: "Kind",
  "milestone:kind": "Milestone",
  "session:kind": "Event",
  "membership:user_id": "Member",
  "api_token:user_id": "Acts as",
  "session:user_id": "User",
  "export:status": "Pack status",
};

/** Field order: the fields people look for first, then the rest alphabetically. */
const ORDER = [
  "title",
  "filename",
  "name",
  "url",
  "kind",
  "severity",
  "status",
  "role",
  "user_id",
  "active",
  "nis2_enabled",
  "description",
  "root_cause",
  "lessons_learned",
  "notes",
  "actions",
  "size_bytes",
  "content_type",
  "sha256",
  "due_at",
  "completed_at",
  "completed_by",
  "deleted_at",
  "revoked_at",
  "expires_at",
  "error",
  "disabled_reason",
];

export function fieldLabel(resourceType: string, field: string): string {
  return LABELS[`${resourceType}:${field}`] ?? LABELS[field] ?? humanize(field);
}

const ENUMS: Record<string, Record<string, string>> = {
  severity: { low: "Low", medium: "Medium", high: "High", critical: "Critical" },
  "incident:status": { open: "Open", in_progress: "In progress", resolved: "Resolved", closed: "Closed" },
  "export:status": { queued: "Queued", building: "Building", ready: "Ready", failed: "Failed" },
  role: { owner: "Owner", admin: "Admin", member: "Member", viewer: "Viewer" },
  "milestone:kind": {
    early_warning: "Early Warning",
    full_notification: "Full Notification",
    final_report: "Final Report",
  },
  "session:kind": { signed_in: "Signed in", signed_out: "Signed out", sign_in_failed: "Sign-in failed" },
  plan_id: { basic: "Basic", business: "Business" },
};

/** Columns that hold a user's id: shown as the user's name and email. */
const USER_FIELDS = new Set(["created_by", "uploaded_by", "requested_by", "completed_by", "deleted_by", "user_id"]);

/**
 * Columns kept out of the readable view (they stay in the raw JSON): ids that mean nothing to a
 * reader, and bookkeeping. `created_at` is the entry's own time on a create. On a membership,
 * the member is the entry's resource already (its label is their email).
 */
const INTERNAL = new Set([
  "id",
  "tenant_id",
  "blob_id",
  "result_blob_id",
  "pdf_blob_id",
  "incident_id",
  "created_at",
  "updated_at",
  "progress",
  "consecutive_failures",
]);
const INTERNAL_PER_RESOURCE = new Set(["membership:user_id", "session:user_id", "session:email"]);

const BOOLEANS: Record<string, [string, string]> = {
  nis2_enabled: ["On", "Off"],
  active: ["Enabled", "Disabled"],
};

export function isInternalField(resourceType: string, field: string): boolean {
  return INTERNAL.has(field) || INTERNAL_PER_RESOURCE.has(`${resourceType}:${field}`);
}

// ---------------------------------------------------------------------------------------------
// Values

/** Bytes as people read them: "512 B", "2.4 KB", "18 MB" (1 KB = 1024 bytes, as the pages show sizes). */
export function formatSize(bytes: number): string {
  const units: Array<[string, number]> = [
    ["TB", 1024 ** 4],
    ["GB", 1024 ** 3],
    ["MB", 1024 ** 2],
    ["KB", 1024],
  ];
  for (const [unit, size] of units) {
    if (Math.abs(bytes) >= size) {
      const n = bytes / size;
      return `${(Math.abs(n) < 10 ? n.toFixed(1) : n.toFixed(0)).replace(/\.0$/, "")} ${unit}`;
    }
  }
  return `${bytes} B`;
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$/;

/** A timestamp as "2026-11-26 03:21 UTC" (pages turn it into the viewer's time zone). */
export function formatDate(value: string): { text: string; iso: string } | null {
  if (!TIMESTAMP.test(value)) return null;
  // A real calendar day (JavaScript would roll 2026-02-31 over to March).
  const [y, m, d] = value.slice(0, 10).split("-").map(Number);
  const day = new Date(Date.UTC(y, m - 1, d));
  if (day.getUTCMonth() !== m - 1 || day.getUTCDate() !== d) return null;
  // PostgreSQL may write the offset as "+00"; JavaScript wants "+00:00".
  const date = new Date(value.replace(" ", "T").replace(/([+-]\d{2})$/, "$1:00"));
  if (Number.isNaN(date.getTime())) return null;
  const iso = date.toISOString();
  return { text: `${iso.slice(0, 16).replace("T", " ")} UTC`, iso };
}

/** A bytea as PostgreSQL puts it in JSON ("\\x0b95…") or any hex string, as lowercase hex. */
function hexOf(value: string): string | null {
  const hex = value.startsWith("\\x") ? value.slice(2) : value;
  return /^[0-9a-fA-F]+$/.test(hex) && hex.length % 2 === 0 ? hex.toLowerCase() : null;
}

export interface FormatContext {
  users?: UserDirectory;
  /** The tenant's slug, for links; without it nothing is linked (the PDF). */
  slug?: string;
}

/** One value of one field, as people read it. */
export function formatValue(resourceType: string, field: string, value: unknown, context: FormatContext = {}): Shown {
  if (value === null || value === undefined) return { text: "—", kind: "none" };
  const enumValues = ENUMS[`${resourceType}:${field}`] ?? ENUMS[field];
  if (typeof value === "string" && enumValues) {
    return { text: enumValues[value] ?? humanize(value), kind: "enum" };
  }
  if (USER_FIELDS.has(field) && typeof value === "string") {
    const user = context.users?.get(value);
    if (user) {
      const name = user.name.trim();
      return {
        text: name && name !== user.email ? `${name} (${user.email})` : user.email,
        kind: "user",
        href: context.slug ? `/t/${context.slug}/members` : undefined,
      };
    }
    return context.users
      ? { text: "a former member", kind: "user", title: "This user is no longer a member of the tenant." }
      : { text: "a user", kind: "user" };
  }
  if (typeof value === "boolean") {
    const [yes, no] = BOOLEANS[field] ?? ["Yes", "No"];
    return { text: value ? yes : no, kind: "bool" };
  }
  if (field === "size_bytes" && typeof value === "number") {
    return { text: formatSize(value), kind: "size", title: `${value.toLocaleString("en-US")} bytes` };
  }
  if (field === "sha256" && typeof value === "string") {
    const hex = hexOf(value);
    if (hex) return { text: hex, kind: "hash" };
  }
  if (field === "actions" && Array.isArray(value)) {
    return value.length === 0
      ? { text: "All actions", kind: "list" }
      : { text: value.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(", "), kind: "list" };
  }
  if (typeof value === "number") {
    return { text: value.toLocaleString("en-US"), kind: "number" };
  }
  if (typeof value === "string") {
    if (field.endsWith("_at")) {
      const date = formatDate(value);
      if (date) return { text: date.text, kind: "date", datetime: date.iso };
    }
    if (value === "") return { text: "(empty)", kind: "none" };
    return { text: value, kind: value.length > 80 || value.includes("\n") ? "long" : "text" };
  }
  return { text: JSON.stringify(value), kind: "text" };
}

// ---------------------------------------------------------------------------------------------
// Entries

function fieldRank(field: string): number {
  const i = ORDER.indexOf(field);
  return i < 0 ? ORDER.length : i;
}

/** The readable changes of an entry, and the fields it leaves to the raw JSON. */
export function entryChanges(
  entry: Pick<EntryLike, "resource_type" | "changes">,
  context: FormatContext = {},
): { changes: FieldChange[]; hidden: string[] } {
  const changes: FieldChange[] = [];
  const hidden: string[] = [];
  const fields = Object.keys(entry.changes ?? {}).sort((a, b) => fieldRank(a) - fieldRank(b) || a.localeCompare(b));
  for (const field of fields) {
    const change = entry.changes?.[field] ?? {};
    if (isInternalField(entry.resource_type, field)) {
      hidden.push(field);
      continue;
    }
    const row: FieldChange = { field, label: fieldLabel(entry.resource_type, field) };
    if ("old" in change) row.old = formatValue(entry.resource_type, field, change.old, context);
    if ("new" in change) row.new = formatValue(entry.resource_type, field, change.new, context);
    changes.push(row);
  }
  return { changes, hidden };
}

/** Where an entry's resource lives in the workspace (null when it has no page). */
export function resourceHref(entry: EntryLike, slug: string): string | null {
  const base = `/t/${slug}`;
  switch (entry.resource_type) {
    case "incident":
      return entry.resource_id ? `${base}/incidents/${entry.resource_id}` : null;
    case "evidence":
      return entry.incident_id ? `${base}/incidents/${entry.incident_id}#evidence` : null;
    case "milestone":
    case "export":
      return entry.incident_id ? `${base}/incidents/${entry.incident_id}` : null;
    case "webhook":
      return `${base}/webhooks`;
    case "membership":
    case "session":
      return `${base}/members`;
    case "api_token":
      return `${base}/tokens`;
    default:
      return null;
  }
}

/** Everything a page needs to show one entry. */
export function entryView(entry: EntryLike, context: FormatContext = {}): EntryView {
  const { changes, hidden } = entryChanges(entry, context);
  const system = entry.actor_label === "system" && !entry.actor_user_id;
  const user = entry.actor_user_id ? context.users?.get(entry.actor_user_id) : undefined;
  const name = user?.name.trim();
  return {
    title: actionTitle(entry.action),
    changes,
    hidden,
    actor: system
      ? { name: "System", email: null, system: true, href: null }
      : {
          name: name || user?.email || entry.actor_label,
          email: name ? (user?.email ?? entry.actor_label) : null,
          system: false,
          href: context.slug && entry.actor_user_id ? `/t/${context.slug}/members` : null,
        },
    resource: {
      kind: resourceName(entry.resource_type),
      label: entry.resource_label ?? "—",
      href: context.slug ? resourceHref(entry, context.slug) : null,
    },
  };
}

/** Every user id an entry names (actor and user-id fields): look them up once per page. */
export function userIdsOf(entries: Iterable<EntryLike>): string[] {
  const ids = new Set<string>();
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  for (const e of entries) {
    if (e.actor_user_id) ids.add(e.actor_user_id);
    for (const [field, change] of Object.entries(e.changes ?? {})) {
      if (!USER_FIELDS.has(field)) continue;
      for (const v of [change.old, change.new]) if (typeof v === "string" && uuid.test(v)) ids.add(v);
    }
  }
  return [...ids];
}

/** A change on one line, for the PDF and plain text: "Severity: High → Critical". */
export function changeLine(change: FieldChange): string {
  if (change.old && change.new) return `${change.label}: ${change.old.text} → ${change.new.text}`;
  if (change.new) return `${change.label}: ${change.new.text}`;
  if (change.old) return `${change.label}: ${change.old.text} (removed)`;
  return change.label;
}
