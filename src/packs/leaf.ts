/**
 * The leaves of a tenant's audit log as an evidence pack carries them: parsing the leaf bytes
 * (app_private.audit_leaf_bytes) into position, incident link and body, and the row a person reads
 * in audit/entries.csv. Shared by the writer and the verifier, so that both derive the same thing
 * from the same bytes. Hashing and proofs are src/audit/merkle.ts's.
 *
 *   attest-audit-entry/2\n
 *   seq <position>\n
 *   incident-prev <seq> <leaf hash hex>\n     or "incident-prev none"; only entries of an incident have it
 *   \n
 *   <body: one JSON object>
 */
import { hashLeaf, verifyInclusion } from "../audit/merkle.ts";
import { type AuditBody, ENTRY_CSV_COLUMNS } from "./format.ts";

export const LEAF_HEADER = "attest-audit-entry/2";

/** Options of audit/entries.csv. Cells that start like a formula get a leading ' (OWASP CSV injection). */
export const ENTRY_CSV_OPTIONS = { escape_formulas: true, record_delimiter: "\r\n" } as const;

export interface ParsedLeaf {
  seq: number;
  /**
   * The previous entry of the same incident: its position and leaf hash (hex); "none" for the
   * incident's first entry; null when the leaf has no incident-prev line (an entry of no incident).
   */
  incidentPrev: { seq: number; leafHash: string } | "none" | null;
  body: AuditBody;
}

export class LeafError extends Error {}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isNullableString = (v: unknown) => v === null || typeof v === "string";
const POSITION = /^[1-9][0-9]*$/;

function parseIncidentPrev(line: string): ParsedLeaf["incidentPrev"] {
  const value = line.slice("incident-prev ".length);
  if (value === "none") return "none";
  const [seq, leafHash, ...rest] = value.split(" ");
  if (rest.length > 0 || !POSITION.test(seq ?? "") || !/^[0-9a-f]{64}$/.test(leafHash ?? "")) {
    throw new LeafError(
      `its incident-prev line "${line}" is not "incident-prev <seq> <leaf hash>" or "incident-prev none"`,
    );
  }
  return { seq: Number(seq), leafHash };
}

/** What is wrong with a body, or null. Checks the fields a pack relies on and shows. */
function bodyProblem(body: unknown): string | null {
  if (!isObject(body)) return "its body is not a JSON object";
  if (body.v !== 1 && body.v !== 2) return `its body has version ${JSON.stringify(body.v)}, not 1 or 2`;
  for (const key of ["tenant_id", "occurred_at", "actor_label", "action", "resource_type", "surface", "db_role"]) {
    if (typeof body[key] !== "string") return `its body has no ${key}`;
  }
  for (const key of ["incident_id", "resource_id", "resource_label", "request_id", "ip", "user_agent"]) {
    if (!isNullableString(body[key])) return `its body's ${key} is not text`;
  }
  if (!isObject(body.changes)) return "its body's changes are not a JSON object";
  return null;
}

/** Parses the text of a leaf; throws LeafError saying what is wrong. */
export function parseLeaf(text: string): ParsedLeaf {
  const split = text.indexOf("\n\n");
  if (split < 0) throw new LeafError("it has no blank line between its header and its body");
  const [format, seqLine, ...rest] = text.slice(0, split).split("\n");
  if (format !== LEAF_HEADER) throw new LeafError(`it does not start with "${LEAF_HEADER}"`);
  if (
    !seqLine?.startsWith("seq ") ||
    !POSITION.test(seqLine.slice(4)) ||
    !Number.isSafeInteger(Number(seqLine.slice(4)))
  ) {
    throw new LeafError(`its second line "${seqLine ?? ""}" is not "seq <position>"`);
  }
  if (rest.length > 1 || (rest.length === 1 && !rest[0].startsWith("incident-prev "))) {
    throw new LeafError("its header has lines other than seq and incident-prev");
  }
  const incidentPrev = rest.length === 1 ? parseIncidentPrev(rest[0]) : null;
  let body: unknown;
  try {
    body = JSON.parse(text.slice(split + 2));
  } catch {
    throw new LeafError("its body is not valid JSON");
  }
  const problem = bodyProblem(body);
  if (problem) throw new LeafError(problem);
  return { seq: Number(seqLine.slice(4)), incidentPrev, body: body as AuditBody };
}

/** The text of an incident-prev value: "<seq> <leaf hash hex>" or "none". */
export function incidentPrevText(prev: ParsedLeaf["incidentPrev"]): string {
  if (prev === null) return "(no incident link)";
  return prev === "none" ? "none" : `${prev.seq} ${prev.leafHash}`;
}

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
