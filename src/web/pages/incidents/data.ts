/**
 * What the incident page reads of one incident, as the signed-in user (RLS applies): the incident,
 * its evidence, NIS2 milestones, evidence pack requests and its audit timeline. Times come as ISO
 * 8601 UTC text, which the views show in the viewer's time zone.
 */
import type pg from "pg";

/** How many audit entries the incident page shows. */
export const TIMELINE_LIMIT = 100;

const ISO_FORMAT = `'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'`;
export const iso = (column: string) => `to_char(${column} at time zone 'UTC', ${ISO_FORMAT})`;

export interface IncidentRow {
  id: string;
  title: string;
  severity: string;
  status: string;
  description: string;
  root_cause: string | null;
  lessons_learned: string | null;
  nis2_enabled: boolean;
  created_at: string;
  updated_at: string;
  deleted_at: string | null;
  created_by_name: string | null;
  created_by_email: string | null;
  deleted_by_name: string | null;
  deleted_by_email: string | null;
  overdue_milestones: number;
}

export async function loadIncident(client: pg.ClientBase, id: string): Promise<IncidentRow | undefined> {
  const { rows } = await client.query<IncidentRow>(
    `select i.id, i.title, i.severity, i.status, i.description, i.root_cause, i.lessons_learned, i.nis2_enabled,
            ${iso("i.created_at")} as created_at, ${iso("i.updated_at")} as updated_at,
            ${iso("i.deleted_at")} as deleted_at,
            cu.name as created_by_name, cu.email as created_by_email,
            du.name as deleted_by_name, du.email as deleted_by_email,
            (select count(*)::int from app_public.nis2_milestones m
             where m.incident_id = i.id and m.completed_at is null and m.due_at < now()) as overdue_milestones
     from app_public.incidents i
     left join app_public.users cu on cu.id = i.created_by
     left join app_public.users du on du.id = i.deleted_by
     where i.id = $1`,
    [id],
  );
  return rows[0];
}

export interface EvidenceRow {
  id: string;
  filename: string;
  content_type: string;
  size_bytes: number;
  sha256: string;
  created_at: string;
  uploaded_by_name: string | null;
  uploaded_by_email: string | null;
}

export async function readEvidence(client: pg.ClientBase, incidentId: string): Promise<EvidenceRow[]> {
  const { rows } = await client.query<EvidenceRow>(
    `select e.id, e.filename, e.content_type, e.size_bytes::float8 as size_bytes, encode(e.sha256, 'hex') as sha256,
            ${iso("e.created_at")} as created_at, u.name as uploaded_by_name, u.email as uploaded_by_email
     from app_public.evidence e
     left join app_public.users u on u.id = e.uploaded_by
     where e.incident_id = $1
     order by e.created_at desc, e.filename`,
    [incidentId],
  );
  return rows;
}

export interface MilestoneRow {
  id: string;
  kind: string;
  due_at: string;
  completed_at: string | null;
  notes: string | null;
  status: "pending" | "completed" | "overdue";
  completed_by_name: string | null;
  completed_by_email: string | null;
}

export async function readMilestones(client: pg.ClientBase, incidentId: string): Promise<MilestoneRow[]> {
  const { rows } = await client.query<MilestoneRow>(
    `select m.id, m.kind, ${iso("m.due_at")} as due_at, ${iso("m.completed_at")} as completed_at, m.notes,
            app_public.nis2_milestones_status(m) as status,
            u.name as completed_by_name, u.email as completed_by_email
     from app_public.nis2_milestones m
     left join app_public.users u on u.id = m.completed_by
     where m.incident_id = $1
     order by m.due_at`,
    [incidentId],
  );
  return rows;
}

export interface ExportRow {
  id: string;
  status: "queued" | "building" | "ready" | "failed";
  progress: number;
  error: string | null;
  created_at: string;
  finished_at: string | null;
  requested_by_name: string | null;
  requested_by_email: string | null;
}

export async function readExports(client: pg.ClientBase, incidentId: string): Promise<ExportRow[]> {
  const { rows } = await client.query<ExportRow>(
    `select x.id, x.status, x.progress, x.error, ${iso("x.created_at")} as created_at,
            ${iso("x.finished_at")} as finished_at, u.name as requested_by_name, u.email as requested_by_email
     from app_public.exports x
     left join app_public.users u on u.id = x.requested_by
     where x.incident_id = $1
     order by x.created_at desc
     limit 10`,
    [incidentId],
  );
  return rows;
}

export interface TimelineEntry {
  /** Position in the log, or null while pending. */
  seq: string | null;
  occurred_at: string;
  actor_label: string;
  action: string;
  resource_type: string;
  resource_label: string | null;
  changes: Record<string, { old?: unknown; new?: unknown }>;
  total: number;
}

/** The incident's audit entries, newest first (owner/admin with auditLog only: others get an error or nothing). */
export async function readTimeline(client: pg.ClientBase, incidentId: string): Promise<TimelineEntry[]> {
  const { rows } = await client.query<TimelineEntry>(
    `select app_public.audit_log_seq(e) as seq, ${iso("e.occurred_at")} as occurred_at, e.actor_label, e.action,
            e.resource_type, e.resource_label, e.changes, (count(*) over ())::int as total
     from app_public.incidents i
     cross join lateral app_public.incidents_audit_trail(i) e
     where i.id = $1
     order by e.id desc
     limit ${TIMELINE_LIMIT}`,
    [incidentId],
  );
  return rows;
}
