/**
 * The evidence pack format: what a pack ZIP contains, what its manifest says, and what verifying
 * it proves. Shared by the writer (worker), the PDF report and the offline verifier; change them
 * together. Version 2 is written; version 1 packs (written before the audit core v2) are still
 * verified.
 *
 * A version 2 pack (PACK_FORMAT, "attest-evidence-pack/2") is a ZIP with these files:
 *   README.txt            how to verify, in plain words
 *   report.pdf            the report for people
 *   incident.json         the incident, its milestones and its evidence index (IncidentFile)
 *   evidence/<file>       every evidence file of the incident, byte for byte
 *   audit/entries.jsonl   the incident's audit entries, oldest first, one per line (LeafLine):
 *                         {"seq": n, "leaf": "<the exact leaf bytes>", "proof": ["<hex>", ...]}
 *                         leaf = "attest-audit-entry/2\nseq <n>\nincident-prev <seq> <leaf hash hex>|none\n\n<body JSON>"
 *                         leaf hash = SHA-256(0x00 || leaf bytes); proof = the RFC 9162 inclusion proof of
 *                         leaf n-1 in the tree of the checkpoint's size, leaf side first
 *   audit/entries.csv     the same entries as CSV for people (ENTRY_CSV_COLUMNS), derived from each leaf's body
 *   audit/checkpoint.txt  the tenant log's signed checkpoint (C2SP tlog-checkpoint in a C2SP signed note,
 *                         src/audit/checkpoint.ts), exactly as the installation stored it
 *   manifest.json         Manifest: every other file's path, size and SHA-256, the entries' positions,
 *                         the checkpoint's origin, size and root, the signing key
 *   manifest.sig          base64 Ed25519 signature of the exact bytes of manifest.json
 * ZIP directory entries (names ending in "/", which tools such as `zip -r` add) are ignored.
 *
 * What a verifier holding only the pack and the installation's public key proves (`npm run verify`):
 *   - every file is the one signed (manifest.sig over manifest.json, which lists each file's SHA-256);
 *   - the checkpoint is signed by that key under the tenant's log name (origin `<prefix>/audit/<tenant id>`),
 *     and every entry is the leaf at its position in the tree that checkpoint commits to (inclusion
 *     proof), so no entry was altered, fabricated or moved, whoever holds the key, unless the key
 *     holder signed a different tree (below);
 *   - the entries are this incident's and this tenant's (each leaf's body says so), in log order;
 *   - none of the incident's entries is missing between its first and its last entry in the pack:
 *     each leaf names the position and leaf hash of the previous entry of the same incident
 *     ("incident-prev", "none" for the incident's first entry), and that line is covered by the
 *     leaf hash the tree commits to. Removing, adding or reordering any entry but the last breaks a
 *     link, even for someone who re-signs the manifest with the installation's key;
 *   - audit/entries.csv says what the leaves say.
 * What it cannot prove:
 *   - that there were no entries of the incident after the pack's last entry (up to the checkpoint's
 *     size): the incident's last entries can be left out, by the key holder, without a trace in the
 *     pack. Compare with a later pack or ask the installation;
 *   - that the tree is the installation's only tree: the key holder can build and sign an entirely
 *     different log. That is detected only by comparing the checkpoint with checkpoints obtained
 *     elsewhere (earlier packs, the installation's reporting.audit_checkpoints, a witness): a
 *     consistency proof from the older to the newer checkpoint (reporting.audit_consistency_proof)
 *     must verify (src/audit/merkle.ts verifyConsistency);
 *   - anything about entries after the checkpoint, or about other incidents (the pack holds only
 *     their number: the tree size, and the hashes in the proofs);
 *   - that what was recorded is true: it proves what the installation recorded, and when, not that
 *     the people and systems that caused the entries told the truth.
 *
 * A version 1 pack (PACK_FORMAT_V1) has audit/entries.jsonl lines {"document": {...}, "hash": "<hex>"}
 * (hash = SHA-256 of the canonical JSON of document, src/audit/canonical.ts), audit/entries.csv with
 * ENTRY_CSV_COLUMNS_V1, and audit/chain.jsonl: the tenant's hash chain from the incident's first
 * entry to the signed head ({"seq", "prev_hash", "hash"} per line); the manifest (ManifestV1) names
 * chain_from and the head. See git history for the v1 writer.
 */
import type { AuditDocument } from "../audit/leaf.ts";

export const PACK_FORMAT = "attest-evidence-pack/2";
export const PACK_FORMAT_V1 = "attest-evidence-pack/1";

export const MANIFEST_PATH = "manifest.json";
export const SIGNATURE_PATH = "manifest.sig";
export const ENTRIES_JSONL_PATH = "audit/entries.jsonl";
export const ENTRIES_CSV_PATH = "audit/entries.csv";
export const CHECKPOINT_PATH = "audit/checkpoint.txt";
/** v1 only. */
export const CHAIN_PATH = "audit/chain.jsonl";
export const INCIDENT_PATH = "incident.json";
export const REPORT_PATH = "report.pdf";
export const README_PATH = "README.txt";

/** The columns both versions' entries.csv start with; each version adds its hashes. */
const ENTRY_CSV_COMMON_COLUMNS = [
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
] as const;

export const ENTRY_CSV_COLUMNS = [...ENTRY_CSV_COMMON_COLUMNS, "leaf_hash"] as const;
export const ENTRY_CSV_COLUMNS_V1 = [...ENTRY_CSV_COMMON_COLUMNS, "prev_hash", "hash"] as const;

export interface ManifestFile {
  path: string;
  size: number;
  sha256: string;
}

interface ManifestCommon {
  tool: { name: "attest"; version: string };
  generated_at: string;
  tenant: { id: string; slug: string; name: string };
  incident: { id: string; title: string };
  /** Every file in the ZIP except manifest.json and manifest.sig, in ZIP order. */
  files: ManifestFile[];
  signing_key: { algorithm: "ed25519"; fingerprint: string; public_key_pem: string };
}

/** manifest.json of a version 2 pack. */
export interface Manifest extends ManifestCommon {
  format: typeof PACK_FORMAT;
  audit: {
    /** The position (seq) of every entry of this incident, oldest first: entries.jsonl holds exactly these. */
    entries: number[];
    /** What audit/checkpoint.txt states: the tree every entry's proof leads to. root_hash in hex. */
    checkpoint: { origin: string; tree_size: number; root_hash: string };
  };
}

/** manifest.json of a version 1 pack. */
export interface ManifestV1 extends ManifestCommon {
  format: typeof PACK_FORMAT_V1;
  audit: {
    /** The seq of every entry of this incident, oldest first: entries.jsonl holds exactly these. */
    entries: number[];
    /** chain.jsonl runs from this seq to head.seq without gaps. */
    chain_from: number;
    /** The tenant chain's head when the pack was built (signed through this manifest). */
    head: { seq: number; hash: string };
  };
}

export type AnyManifest = Manifest | ManifestV1;

/** One line of audit/entries.jsonl (version 2). */
export interface LeafLine {
  seq: number;
  /** The leaf bytes as UTF-8 text (they always are UTF-8). */
  leaf: string;
  /** The inclusion proof, hex, leaf side first. */
  proof: string[];
}

/** One line of audit/entries.jsonl (version 1). */
export interface EntryLine {
  document: AuditDocument;
  hash: string;
}

/** One line of audit/chain.jsonl (version 1). */
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
