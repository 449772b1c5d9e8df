/**
 * An evidence pack's audit entries: the row a person reads in audit/entries.csv, and the checks
 * each entry passes (the writer refuses a pack that fails them, the verifier reports them). The
 * leaf bytes themselves are src/audit/leaf.ts's; hashing and proofs src/audit/merkle.ts's.
 */

import { LeafError, type ParsedLeaf, parseLeaf } from "../audit/leaf.ts";
import { hashLeaf, verifyInclusion } from "../audit/merkle.ts";
import { ENTRY_CSV_COLUMNS } from "./format.ts";

/** Options of audit/entries.csv. Cells that start like a formula get a leading ' (OWASP CSV injection). */
export const ENTRY_CSV_OPTIONS = { escape_formulas: true, record_delimiter: "\r\n" } as const;

/** The cells of an entry's row in audit/entries.csv (ENTRY_CSV_COLUMNS), before CSV encoding. */
export function leafCsvRow(leaf: ParsedLeaf, leafHash: string): string[] {
  const b = leaf.body;
  const cells: Record<(typeof ENTRY_CSV_COLUMNS)[number], string> = {
    seq: String(leaf.seq),
    occurred_at: b.occurred_at,
    actor: b.actor_label,
    action: b.action,
    resource_type: b.resource_type,
    resource_id: b.resource_id ?? "",
    resource_label: b.resource_label ?? "",
    incident_id: b.incident_id ?? "",
    request_id: b.request_id ?? "",
    ip: b.ip ?? "",
    user_agent: b.user_agent ?? "",
    surface: b.surface,
    db_role: b.db_role,
    changes: JSON.stringify(b.changes),
    leaf_hash: leafHash,
  };
  return ENTRY_CSV_COLUMNS.map((c) => cells[c]);
}

// ---- the checks an entry of a pack passes (the writer refuses, the verifier fails) -------------

/** What an entry is checked against: the pack's checkpoint and its incident. */
export interface PackScope {
  tenantId: string;
  incidentId: string;
  treeSize: number;
  rootHash: Uint8Array;
}

export interface ProvenLeaf {
  leaf: ParsedLeaf;
  /** hex */
  leafHash: string;
}

/**
 * Parses the leaf of the entry at `seq` and checks that it is the leaf at that position of the
 * checkpoint's tree. Throws LeafError, in words that follow "entry <seq>: ".
 */
export function proveLeaf(seq: number, leafText: string, proof: readonly Uint8Array[], scope: PackScope): ProvenLeaf {
  let leaf: ParsedLeaf;
  try {
    leaf = parseLeaf(leafText);
  } catch (error) {
    throw new LeafError(`its leaf is malformed: ${(error as Error).message}`);
  }
  if (leaf.seq !== seq) throw new LeafError(`its leaf says it is at position ${leaf.seq}`);
  if (seq > scope.treeSize) {
    throw new LeafError(`it is after the end of the checkpoint's tree of ${scope.treeSize} entries`);
  }
  const leafHash = hashLeaf(Buffer.from(leafText, "utf8"));
  if (!verifyInclusion(seq - 1, scope.treeSize, leafHash, proof, scope.rootHash)) {
    throw new LeafError(
      "its inclusion proof does not lead to the checkpoint's root: the entry was altered, or it is not in the signed log",
    );
  }
  return { leaf, leafHash: leafHash.toString("hex") };
}

/** Why the entry is not this incident's, or null. Follows "entry <seq> ". */
export function strangerProblem(leaf: ParsedLeaf, scope: PackScope): string | null {
  const { tenant_id: tenantId, incident_id: incidentId } = leaf.body;
  if (tenantId !== scope.tenantId) return `belongs to another workspace (${tenantId}), not to this incident`;
  if (incidentId !== scope.incidentId) return `belongs to another incident (${incidentId}), not to this incident`;
  if (leaf.incidentPrev === null) return "has no incident link (incident-prev line), which every incident entry has";
  return null;
}

/**
 * Why the entry's incident link does not name the pack's previous entry, or null. `previous` is
 * the entry before it in the pack (null for the first). Follows "entry <seq> ".
 */
export function linkProblem(leaf: ParsedLeaf, previous: { seq: number; leafHash: string } | null): string | null {
  const prev = leaf.incidentPrev;
  if (prev === null || prev === "none") {
    return previous === null
      ? null
      : `says it is the incident's first entry, but entry ${previous.seq} comes before it: an entry was added or moved`;
  }
  if (previous === null) {
    return `links to entry ${prev.seq} as the incident's previous entry, which the pack does not hold: the incident's earlier entries were removed`;
  }
  if (prev.seq !== previous.seq) {
    return `links to entry ${prev.seq} as the incident's previous entry, but the entry before it in the pack is ${previous.seq}: an entry was removed, added or moved`;
  }
  if (prev.leafHash !== previous.leafHash) {
    return `links to entry ${prev.seq} with another leaf hash than entry ${previous.seq} in the pack has: that entry was replaced`;
  }
  return null;
}
