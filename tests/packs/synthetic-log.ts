/**
 * A synthetic tenant audit log for the pack tests, built as the sealer builds one (leaf bytes of
 * app_private.audit_leaf_bytes, RFC 9162 hashes from src/audit/merkle.ts, a C2SP checkpoint from
 * src/audit/checkpoint.ts): 21 entries, ten of them the incident's, one of another incident, the
 * others of no incident. Entries 1 to 3 were captured before the audit core v2 and carry their v1
 * canonical document as body; the others a v2 body.
 */
import type { KeyObject } from "node:crypto";
import { auditHash, canonicalJson } from "../../src/audit/canonical.ts";
import { originOf, signCheckpoint } from "../../src/audit/checkpoint.ts";
import type { AuditBodyV2, AuditDocument } from "../../src/audit/leaf.ts";
import { hashLeaf, inclusionProofOf, rootOf } from "../../src/audit/merkle.ts";
import type { PackEntry } from "../../src/packs/writer.ts";
import { EVIDENCE, INCIDENT_ID, OTHER_INCIDENT_ID, sha256, TENANT, TITLE, USER } from "./pack-tools.ts";

export const ORIGIN_PREFIX = "attest.test";
export const ORIGIN = originOf(ORIGIN_PREFIX, TENANT.id);
export const CHECKPOINT_TIME = new Date("2026-11-20T09:59:00.000Z");
/** Entries 1..V1_ENTRIES have v1 bodies. */
const V1_ENTRIES = 3;

type Shape = Partial<AuditBodyV2>;

/** The leaf bytes (app_private.audit_leaf_bytes). */
export function leafBytes(seq: number, incidentPrev: string | null, body: string): Buffer {
  const link = incidentPrev === null ? "" : `incident-prev ${incidentPrev}\n`;
  return Buffer.from(`attest-audit-entry/2\nseq ${seq}\n${link}\n${body}`, "utf8");
}

/** A v2 body, keys in the order app_private.audit_entry_body writes them. */
export function v2Body(seq: number, shape: Shape): string {
  const b: AuditBodyV2 = {
    v: 2,
    tenant_id: TENANT.id,
    id: 1000 + seq,
    occurred_at: new Date(Date.UTC(2026, 10, 3, 9, seq, 7, 250)).toISOString(),
    actor_user_id: USER,
    actor_label: "anna.berg@nordwind.example",
    api_token_id: null,
    db_role: "attest_user",
    surface: "web",
    request_id: `req-${seq}`,
    ip: "198.51.100.23",
    user_agent: "Mozilla/5.0 (X11; Linux x86_64)",
    action: "incident.updated",
    resource_type: "incident",
    resource_id: INCIDENT_ID,
    resource_label: TITLE,
    incident_id: INCIDENT_ID,
    changes: {},
    ...shape,
  };
  return JSON.stringify(b);
}

/** The v1 document of the entry at `seq` (what the v1 writer and the v1 fixture hold). */
export function v1Document(seq: number, shape: Shape, prevHash: string | null): AuditDocument {
  const b = JSON.parse(v2Body(seq, shape)) as AuditBodyV2;
  // (keys in the v1 writer's order: the v1 fixture's entries.jsonl holds them so)
  return {
    v: 1,
    tenant_id: b.tenant_id,
    seq,
    occurred_at: b.occurred_at,
    actor_user_id: b.actor_user_id,
    actor_label: b.actor_label,
    db_role: b.db_role,
    action: b.action,
    resource_type: b.resource_type,
    resource_id: b.resource_id,
    resource_label: b.resource_label,
    incident_id: b.incident_id,
    changes: b.changes,
    request_id: b.request_id,
    ip: b.ip,
    user_agent: b.user_agent,
    surface: b.surface,
    prev_hash: prevHash,
  };
}

function v1Body(seq: number, shape: Shape, prevHash: string | null): { body: string; hash: string } {
  const document = v1Document(seq, shape, prevHash);
  return { body: canonicalJson(document), hash: auditHash(document as unknown as Record<string, unknown>) };
}

const evidence = (i: number): Shape => ({
  action: "evidence.uploaded",
  resource_type: "evidence",
  resource_id: EVIDENCE[i].id,
  resource_label: EVIDENCE[i].filename,
  changes: {
    filename: { new: EVIDENCE[i].filename },
    size_bytes: { new: EVIDENCE[i].bytes.length },
    sha256: { new: `\\x${sha256(EVIDENCE[i].bytes)}` },
  },
});
const noIncident: Shape = {
  incident_id: null,
  resource_type: "webhook",
  resource_id: null,
  resource_label: "https://hooks.example",
};

/** What happens at seq 1, 2, 3, …: the incident's entries are 3, 4, 5, 7, 8, 10, 11, 12, 14, 15. */
export const SHAPES: Shape[] = [
  {
    ...noIncident,
    action: "tenant.created",
    resource_type: "tenant",
    resource_label: TENANT.name,
    actor_user_id: null,
  },
  { ...noIncident, action: "membership.created", resource_type: "membership" },
  { action: "incident.created", changes: { title: { new: TITLE }, severity: { new: "high" } } },
  evidence(0),
  evidence(1),
  { ...noIncident, action: "webhook.updated", changes: { active: { old: true, new: false } } },
  evidence(2),
  { changes: { severity: { old: "high", new: "critical" } } },
  {
    action: "incident.created",
    incident_id: OTHER_INCIDENT_ID,
    resource_id: OTHER_INCIDENT_ID,
    resource_label: "DDoS",
  },
  { changes: { description: { old: "", new: 'Quote " backslash \\ newline \n 東京 — Łódź 🧾' } } },
  { resource_label: '=HYPERLINK("http://evil.example","open")', changes: { title: { old: TITLE, new: "=x" } } },
  { action: "export.requested", resource_type: "export", resource_label: `Evidence pack · ${TITLE}` },
  { ...noIncident, action: "api_token.created", resource_type: "api_token", resource_label: "ci" },
  { action: "milestone.completed", resource_type: "milestone", resource_label: `Early Warning · ${TITLE}` },
  { changes: { status: { old: "open", new: "resolved" } }, ip: null, user_agent: null, surface: "api" },
  { ...noIncident, action: "session.created", resource_type: "session", surface: "sql", db_role: "postgres" },
  { ...noIncident, action: "session.created", resource_type: "session" },
  {
    action: "incident.updated",
    incident_id: OTHER_INCIDENT_ID,
    resource_id: OTHER_INCIDENT_ID,
    resource_label: "DDoS",
  },
  { ...noIncident, action: "webhook.delivered" },
  { ...noIncident, action: "session.created", resource_type: "session" },
  { ...noIncident, action: "session.ended", resource_type: "session" },
];

export interface SyntheticLog {
  leaves: Buffer[];
  leafHashes: Buffer[];
  root: Buffer;
  /** The pack entries of an incident (its leaves with their proofs in the whole tree). */
  entriesOf(incidentId: string): PackEntry[];
  /** The whole log's checkpoint, signed with `privateKey`. */
  checkpoint(privateKey: KeyObject, origin?: string): string;
}

/** Builds the log from what happens at each position (SHAPES, or another history). */
export function syntheticLog(shapes: Shape[] = SHAPES): SyntheticLog {
  const leaves: Buffer[] = [];
  const leafHashes: Buffer[] = [];
  const incidentOf: Array<string | null> = [];
  const lastOfIncident = new Map<string, string>();
  let v1Prev: string | null = null;
  shapes.forEach((shape, i) => {
    const seq = i + 1;
    let body: string;
    if (seq <= V1_ENTRIES) {
      const v1 = v1Body(seq, shape, v1Prev);
      body = v1.body;
      v1Prev = v1.hash;
    } else {
      body = v2Body(seq, shape);
    }
    const incident = (JSON.parse(body) as { incident_id: string | null }).incident_id;
    const prev = incident === null ? null : (lastOfIncident.get(incident) ?? "none");
    const leaf = leafBytes(seq, prev, body);
    const leafHash = hashLeaf(leaf);
    if (incident !== null) lastOfIncident.set(incident, `${seq} ${leafHash.toString("hex")}`);
    leaves.push(leaf);
    leafHashes.push(leafHash);
    incidentOf.push(incident);
  });
  const root = rootOf(leafHashes);
  return {
    leaves,
    leafHashes,
    root,
    entriesOf: (incidentId) =>
      leaves
        .map((leaf, i) => ({ seq: i + 1, leaf, proof: inclusionProofOf(i, leafHashes) }))
        .filter((_, i) => incidentOf[i] === incidentId),
    checkpoint: (privateKey, origin = ORIGIN) =>
      signCheckpoint(origin, leaves.length, root, CHECKPOINT_TIME, privateKey),
  };
}
