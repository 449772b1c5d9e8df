/**
 * The evidence pack format (version 1): what a pack ZIP contains and what its manifest says.
 * Shared by the builder (worker) and the offline verifier; change both or neither.
 *
 * A pack is a ZIP with these files:
 *   README.txt            how to verify, in plain words
 *   report.pdf            the report for people
 *   incident.json         the incident, its milestones and its evidence index (IncidentFile)
 *   evidence/<file>       every evidence file of the incident, byte for byte
 *   audit/entries.jsonl   the incident's audit entries, oldest first: {"document": {...}, "hash": "<hex>"}
 *                         where hash = SHA-256 of the canonical JSON of document (src/packs/canonical.ts)
 *   audit/entries.csv     the same entries as CSV (ENTRY_CSV_COLUMNS), oldest first
 *   audit/chain.jsonl     the tenant's chain from the incident's first entry to the signed head, one
 *                         link per line: {"seq": n, "prev_hash": "<hex>|null", "hash": "<hex>"}; it
 *                         proves no entry was removed or reordered without showing other entries
 *   manifest.json         Manifest (below): every other file's path, size and SHA-256, the chain proof
 *   manifest.sig          base64 Ed25519 signature of the exact bytes of manifest.json
 */

export const PACK_FORMAT = "attest-evidence-pack/1";

export const MANIFEST_PATH = "manifest.json";
export const SIGNATURE_PATH = "manifest.sig";
export const ENTRIES_JSONL_PATH = "audit/entries.jsonl";
export const ENTRIES_CSV_PATH = "audit/entries.csv";
export const CHAIN_PATH = "audit/chain.jsonl";
export const INCIDENT_PATH = "incident.json";
export const REPORT_PATH = "report.pdf";
export const README_PATH = "README.txt";

export const ENTRY_CSV_COLUMNS = [
  "seq",
  "occurred_at",
  "actor",
  "action",
  "resource_type",
  "resource_id",
  "resource_label",
  "incident_id",
  "request_id",
  "ip",
  "user_agent",
  "surface",
  "db_role",
  "changes",
  "prev_hash",
  "hash",
] as const;

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

export interface Manifest {
  format: typeof PACK_FORMAT;
  tool: { name: "attest"; version: string };
  generated_at: string;
  tenant: { id: string; slug: string; name: string };
  incident: { id: string; title: string };
  /** Every file in the ZIP except manifest.json and manifest.sig, in ZIP order. */
  files: ManifestFile[];
  audit: {
    /** The seq of every entry of this incident, oldest first: entries.jsonl holds exactly these. */
    entries: number[];
    /** chain.jsonl runs from this seq to head.seq without gaps. */
    chain_from: number;
    /** The tenant chain's head when the pack was built (signed through this manifest). */
    head: { seq: number; hash: string };
  };
  signing_key: { algorithm: "ed25519"; fingerprint: string; public_key_pem: string };
}

/** One line of audit/entries.jsonl. */
export interface EntryLine {
  document: AuditDocument;
  hash: string;
}

/** The document an audit entry's hash covers (app_private.audit_document in the database). */
export interface AuditDocument {
  v: 1;
  tenant_id: string;
  seq: number;
  occurred_at: string;
  actor_user_id: string | null;
  actor_label: string;
  db_role: string;
  action: string;
  resource_type: string;
  resource_id: string | null;
  resource_label: string | null;
  incident_id: string | null;
  changes: Record<string, { old?: unknown; new?: unknown }>;
  request_id: string | null;
  ip: string | null;
  user_agent: string | null;
  surface: string;
  prev_hash: string | null;
}

/** One line of audit/chain.jsonl. */
export interface ChainLink {
  seq: number;
  prev_hash: string | null;
  hash: string;
}

/** incident.json */
export interface IncidentFile {
  incident: {
    id: string;
    title: string;
    severity: string;
    status: string;
    description: string;
    root_cause: string | null;
    lessons_learned: string | null;
    nis2_enabled: boolean;
    created_at: string;
    created_by: string | null;
    updated_at: string;
  };
  tenant: { id: string; slug: string; name: string };
  milestones: Array<{
    kind: string;
    name: string;
    due_at: string;
    status: "pending" | "completed" | "overdue";
    completed_at: string | null;
    completed_by: string | null;
    notes: string | null;
  }>;
  evidence: Array<{
    id: string;
    filename: string;
    path: string;
    content_type: string;
    size: number;
    sha256: string;
    uploaded_at: string;
    uploaded_by: string | null;
  }>;
}

export { formatFingerprint } from "../audit/keys.ts";
